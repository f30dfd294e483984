// The workspace document: what a saved workspace holds (PUT /projects/{e}/{p}/workspace) and
// how the automatic layout grows it. Sections of panels; panels keep their kind's config, size
// and order; metrics nobody placed get an automatic panel in the section of their prefix
// (`train/loss` in "train", `loss` in "charts") unless the user removed it.

import type { Doc, Json, Run } from "../api";
import { panelKinds } from "../panels";
import type { PanelSpec, WorkspaceSettings } from "../panels/types";

export interface SectionSpec {
  id: string;
  name: string;
  collapsed?: boolean;
  panels: PanelSpec[];
}

export interface WorkspaceDoc {
  version: 1;
  sections: SectionSpec[];
  /** metrics whose automatic panel was removed (not added back) */
  removed: string[];
  settings: WorkspaceSettings;
  runs: { hidden: string[]; shown: string[] };
  /** the sidebar's filter, search, grouping and sort (the URL wins when it has them) */
  view: { filter?: string; search?: string; group?: string; sort?: string };
}

export const DEFAULT_SETTINGS: WorkspaceSettings = { x: "_step", smoothing: 0, maxVisible: 500 };
export const DEFAULT_HEIGHT = 240;

let counter = 0;
export function newId(prefix = "p"): string {
  counter++;
  return `${prefix}${Date.now().toString(36)}${counter.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}

export function sectionName(key: string): string {
  const i = key.indexOf("/");
  return i > 0 ? key.slice(0, i) : "charts";
}

export function emptyDoc(): WorkspaceDoc {
  return { version: 1, sections: [], removed: [], settings: { ...DEFAULT_SETTINGS }, runs: { hidden: [], shown: [] }, view: {} };
}

function strings(v: Json | undefined): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function num(v: Json | undefined, fallback: number, lo: number, hi: number): number {
  return typeof v === "number" && Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : fallback;
}

/** A saved document read defensively (an older or hand-edited one never breaks the view). */
export function parseDoc(raw: Doc | null | undefined): WorkspaceDoc {
  const doc = emptyDoc();
  if (!raw || typeof raw !== "object") return doc;
  const sections = Array.isArray(raw.sections) ? raw.sections : [];
  for (const s of sections) {
    if (!s || typeof s !== "object" || Array.isArray(s)) continue;
    const panels: PanelSpec[] = [];
    for (const p of Array.isArray(s.panels) ? s.panels : []) {
      if (!p || typeof p !== "object" || Array.isArray(p) || typeof p.kind !== "string") continue;
      const config = p.config && typeof p.config === "object" && !Array.isArray(p.config) ? (p.config as Doc) : {};
      panels.push({
        id: typeof p.id === "string" && p.id ? p.id : newId(),
        kind: p.kind,
        title: typeof p.title === "string" ? p.title : undefined,
        w: num(p.w, 1, 1, 4),
        h: num(p.h, DEFAULT_HEIGHT, 120, 1200),
        config,
      });
    }
    doc.sections.push({ id: typeof s.id === "string" && s.id ? s.id : newId("s"), name: typeof s.name === "string" ? s.name : "charts", collapsed: s.collapsed === true, panels });
  }
  doc.removed = strings(raw.removed);
  const st = raw.settings && typeof raw.settings === "object" && !Array.isArray(raw.settings) ? raw.settings : {};
  doc.settings = {
    x: typeof st.x === "string" && st.x ? st.x : DEFAULT_SETTINGS.x,
    smoothing: num(st.smoothing, 0, 0, 0.99),
    maxVisible: num(st.maxVisible, DEFAULT_SETTINGS.maxVisible, 1, 5000),
  };
  const runs = raw.runs && typeof raw.runs === "object" && !Array.isArray(raw.runs) ? raw.runs : {};
  doc.runs = { hidden: strings(runs.hidden), shown: strings(runs.shown) };
  const view = raw.view && typeof raw.view === "object" && !Array.isArray(raw.view) ? raw.view : {};
  for (const k of ["filter", "search", "group", "sort"] as const) if (typeof view[k] === "string") doc.view[k] = view[k] as string;
  return doc;
}

export function toJson(doc: WorkspaceDoc): Doc {
  return JSON.parse(JSON.stringify(doc)) as Doc;
}

function sectionOrder(a: string, b: string): number {
  return a === "charts" ? -1 : b === "charts" ? 1 : a.localeCompare(b);
}

/** The metric a panel shows, if it shows one (every kind that draws one metric keeps it in
 * `config.key`). */
export function panelMetric(p: PanelSpec): string | null {
  return typeof p.config.key === "string" && p.config.key ? p.config.key : null;
}

/** Add automatic panels for the metrics no panel shows (and the user did not remove), each
 * claimed by the first panel kind that wants it; `sample(metric)` is its summary value in a
 * run that has one. Returns whether the document changed. */
export function autoLayout(doc: WorkspaceDoc, metrics: string[], sample: (metric: string) => Json | undefined, runOf?: (metric: string) => Run | undefined): boolean {
  const placed = new Set<string>();
  for (const s of doc.sections) for (const p of s.panels) {
    const m = panelMetric(p);
    if (m) placed.add(m);
  }
  const removed = new Set(doc.removed);
  let changed = false;
  const kinds = panelKinds();
  for (const metric of [...metrics].sort()) {
    if (placed.has(metric) || removed.has(metric) || metric.startsWith("_")) continue;
    const value = sample(metric);
    let spec: PanelSpec | null = null;
    for (const kind of kinds) {
      const config = kind.auto?.(metric, value, runOf?.(metric));
      if (config) {
        spec = { id: newId(), kind: kind.kind, w: 1, h: DEFAULT_HEIGHT, config };
        break;
      }
    }
    if (!spec) continue;
    const name = sectionName(metric);
    let section = doc.sections.find((s) => s.name === name);
    if (!section) {
      section = { id: newId("s"), name, panels: [] };
      const at = doc.sections.findIndex((s) => sectionOrder(name, s.name) < 0);
      if (at < 0) doc.sections.push(section);
      else doc.sections.splice(at, 0, section);
    }
    section.panels.push(spec);
    placed.add(metric);
    changed = true;
  }
  return changed;
}

/** Where a panel is: its section and index. */
export function locate(doc: WorkspaceDoc, id: string): { section: SectionSpec; index: number } | null {
  for (const section of doc.sections) {
    const index = section.panels.findIndex((p) => p.id === id);
    if (index >= 0) return { section, index };
  }
  return null;
}

/** Move a panel before `beforeId` (or to the end of `sectionId` when null). */
export function movePanel(doc: WorkspaceDoc, id: string, sectionId: string, beforeId: string | null): boolean {
  const from = locate(doc, id);
  const to = doc.sections.find((s) => s.id === sectionId);
  if (!from || !to || id === beforeId) return false;
  const [spec] = from.section.panels.splice(from.index, 1);
  const at = beforeId ? to.panels.findIndex((p) => p.id === beforeId) : -1;
  if (at < 0) to.panels.push(spec);
  else to.panels.splice(at, 0, spec);
  return true;
}
