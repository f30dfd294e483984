// Small DOM and formatting helpers shared by the views.

import type { Doc, Json, Run } from "./api";

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** h("div.cls#id", {attr: value, onclick: fn}, children...) */
export function h<K extends keyof HTMLElementTagNameMap>(
  spec: K | `${K}.${string}` | `${K}#${string}`,
  attrs?: Attrs | null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const parts = spec.match(/[.#]?[^.#]+/g) ?? [spec];
  const el = document.createElement(parts[0] as K);
  const classes: string[] = [];
  for (const part of parts.slice(1)) {
    if (part[0] === "#") el.id = part.slice(1);
    else classes.push(part.slice(1));
  }
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className += (el.className ? " " : "") + String(v);
    else if (k === "value" && "value" in el) (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children) {
    if (Array.isArray(c)) append(el, c);
    else if (c === null || c === undefined || c === false) continue;
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function fmtNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(Number(v.toPrecision(5)));
}

/** A value for a table cell: numbers compact, aggregates as their best/last, objects as JSON. */
export function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return fmtNumber(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.map(fmtValue).join(", ");
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    for (const k of ["best", "last", "max", "min", "mean"]) if (k in o) return fmtValue(o[k]);
    return JSON.stringify(o);
  }
  return String(v);
}

export function fmtTime(ts: number | null | undefined): string {
  if (!ts) return "";
  const d = new Date(ts * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fmtAgo(ts: number | null | undefined): string {
  if (!ts) return "";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  if (seconds < 1) return `${Math.round(Math.max(0, seconds) * 1000)} ms`;
  if (seconds < 10) return `${(Math.floor(seconds * 10) / 10).toFixed(1)} s`;
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** A date and time with seconds (a `_timestamp`, a creation time in full). */
export function fmtDateTime(ts: number | null | undefined): string {
  if (ts === null || ts === undefined || !Number.isFinite(ts)) return "";
  const d = new Date(ts * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A value exactly as stored: numbers in full (shortest round-trip form), strings as they are,
 * everything else as JSON. The config tree and the copy buttons use it. */
export function exactValue(v: unknown): string {
  if (v === undefined) return "";
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : !Number.isFinite(v) ? (v > 0 ? "inf" : "-inf") : String(v);
  if (typeof v === "string") return v;
  if (v === null) return "null";
  return JSON.stringify(v);
}

/** A summary value for people: `_timestamp` as a date, `_runtime` as a duration. */
export function fmtSummary(key: string, v: unknown): string {
  const leaf = key.split(".").pop() ?? key;
  if ((leaf === "_timestamp" || key.endsWith("/_timestamp")) && typeof v === "number") return fmtDateTime(v);
  if ((leaf === "_runtime" || key.endsWith("/_runtime")) && typeof v === "number") return fmtDuration(v);
  return fmtValue(v);
}

/** Copy text to the clipboard (the Clipboard API, else a hidden textarea). */
export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    return;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
}

/** W&B's {"value": x} config form, as runyard.query reads it. */
function unwrap(node: unknown): unknown {
  if (node && typeof node === "object" && !Array.isArray(node)) {
    const keys = Object.keys(node);
    if (keys.length === 1 && keys[0] === "value") return (node as Doc).value;
  }
  return node;
}

function dotted(doc: unknown, key: string): unknown {
  let node: unknown = doc;
  for (const part of key.split(".")) {
    if (node && typeof node === "object" && !Array.isArray(node) && part in (node as Doc)) node = (node as Doc)[part];
    else if (Array.isArray(node) && /^\d+$/.test(part) && Number(part) < node.length) node = node[Number(part)];
    else return undefined;
  }
  return unwrap(node);
}

const SIMPLE: Record<string, keyof Run> = {
  state: "state",
  name: "name",
  id: "run_id",
  run_id: "run_id",
  group: "group",
  job_type: "job_type",
  tags: "tags",
  notes: "notes",
  sweep: "sweep_id",
  host: "host",
  created_at: "created_at",
  runtime: "runtime",
  last_step: "last_step",
};

/** The value of a column for a run: the same field names as runyard.query. */
export function fieldValue(run: Run, field: string): unknown {
  if (field in SIMPLE) return run[SIMPLE[field]];
  if (field.startsWith("config.")) return dotted(run.config, field.slice(7));
  if (field.startsWith("summary.")) {
    const key = field.slice(8);
    if (key in run.summary) return run.summary[key];
    return dotted(run.summary, key);
  }
  return undefined;
}

/** Flatten a nested document to dotted keys (leaves only; W&B's {"value": x} is a leaf). */
export function flatten(doc: Json, prefix = "", out: [string, Json][] = []): [string, Json][] {
  if (doc && typeof doc === "object" && !Array.isArray(doc)) {
    const keys = Object.keys(doc);
    if (keys.length === 1 && keys[0] === "value" && prefix) {
      out.push([prefix, doc.value]);
      return out;
    }
    if (keys.length === 0 && prefix) out.push([prefix, {}]);
    for (const k of keys) flatten(doc[k], prefix ? `${prefix}.${k}` : k, out);
    return out;
  }
  out.push([prefix, doc]);
  return out;
}

export function asNumber(v: unknown): number | null {
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v && typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    for (const k of ["best", "last", "max", "min", "mean"]) if (typeof o[k] === "number") return asNumber(o[k]);
  }
  return null;
}

export function stateBadge(state: string): HTMLElement {
  return h("span.badge", { class: `state-${state}`, title: state }, state);
}

export function errorBox(err: unknown): HTMLElement {
  const msg = err instanceof Error ? err.message : String(err);
  return h("div.error", { role: "alert" }, msg);
}

export { PALETTE } from "./colors";
import { colorAt } from "./colors";

/** The i-th colour of the palette that never repeats (charts of runs without a project index). */
export function color(i: number): string {
  return colorAt(i);
}

/** Parse the "#/path?query" of the location. */
export function hashParts(): { path: string[]; query: URLSearchParams } {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [p, q] = raw.split("?", 2);
  return { path: p.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q ?? "") };
}

export function hashFor(path: string[], query?: Record<string, string | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v) q.set(k, v);
  const qs = q.toString();
  return "#/" + path.map(encodeURIComponent).join("/") + (qs ? "?" + qs : "");
}

/** Replace the URL's query without re-rendering the view (sharing the current state). */
export function replaceQuery(query: Record<string, string | undefined | null>): void {
  const { path } = hashParts();
  history.replaceState(null, "", hashFor(path, query));
}

/** The states of a run whose process is alive (a preempting run still trains): live views
 * refresh it and the run page offers Stop. */
export const LIVE_STATES: ReadonlySet<string> = new Set(["running", "preempting"]);

export function isLive(run: { state: string }): boolean {
  return LIVE_STATES.has(run.state);
}

/** A byte count for people: 999 B, 1.2 KB, 3.4 MB (powers of 1000, as file managers show). */
export function fmtBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
