// The project workspace (#/p/{entity}/{project}): the runs sidebar (search, filter, group,
// sort, an eye per run, stable colours) and sections of panels over the visible runs, generated
// from the metrics' prefixes and then the user's: added, removed, resized (drag the corner),
// reordered (drag the title), configured, saved on the server (theirs, or the project's
// default), live while runs are running.

import { ApiError, del, get, projectPath, put, type Doc, type Json, type ProjectKeys, type Run, type SavedWorkspace } from "../api";
import { runColor } from "../colors";
import { FilterError, parseFilter } from "../filter";
import type { View } from "../main";
import { setCrumbs, setTitle } from "../main";
import { panelKind, panelKinds } from "../panels";
import type { PanelContext, PanelInstance, PanelSpec, RunGroup, SettingField, ShownRun, WorkspaceSettings } from "../panels/types";
import { errorBox, h, isLive, replaceQuery } from "../util";
import { autoLayout, DEFAULT_HEIGHT, emptyDoc, locate, movePanel, newId, panelMetric, parseDoc, sectionName, toJson, type SectionSpec, type WorkspaceDoc } from "./model";
import { colorBase, groupFields, groupRuns, loadRuns } from "./runs";
import { SeriesCache } from "./series";
import { RunSidebar, type SideGroup, type SideRun } from "./sidebar";
import { projectTabs } from "./tabs";
import { refreshMs } from "../views/run";

const LIVE_MS = 5000;
const RUN_CAP = 5000;
const SAVE_DELAY_MS = 600;

interface Frame {
  spec: PanelSpec;
  el: HTMLElement;
  body: HTMLElement;
  instance: PanelInstance | null;
  dirty: boolean;
  seen: boolean;
}

/** Columns of the panel grid for a width: 1 to 4 panels per row. */
export function columnsFor(width: number): number {
  return width < 560 ? 1 : width < 900 ? 2 : width < 1300 ? 3 : 4;
}

/** Set an element's text only when it changes (a new text node is a layout of its box). */
function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function workspaceView(root: HTMLElement, entity: string, project: string, query: URLSearchParams): View {
  setCrumbs([["Projects", "#/"], [`${entity}/${project}`, null]]);
  setTitle(`${entity}/${project}`);
  let disposed = false;
  let doc: WorkspaceDoc = emptyDoc();
  let savedScope: string | null = null;
  let runs: Run[] = [];
  let total = 0;
  let base = 0;
  let keys: ProjectKeys = { config: [], summary: [], metrics: [] };
  const collapsed = new Set<string>();
  const frames = new Map<string, Frame>();
  const series = new SeriesCache(entity, project);
  let cols = 3;
  let saveTimer: number | undefined;
  let liveTimer: number | undefined;
  let loadGen = 0;
  const perf = { lastLiveMs: 0, liveUpdates: 0, firstDrawMs: 0 };
  (window as unknown as { runyardWorkspace?: unknown }).runyardWorkspace = { stats: series.stats, perf };

  // -- controls -------------------------------------------------------------------------------
  let filterText = query.get("filter") ?? "";
  let search = query.get("search") ?? "";
  let groupBy = query.get("group") ?? "";
  let sort = query.get("sort") ?? "";
  const urlHas = { filter: query.has("filter"), search: query.has("search"), group: query.has("group"), sort: query.has("sort") };

  const searchInput = h("input#ws-search", { type: "search", placeholder: "Search run names", value: search, "aria-label": "Search runs by name", autocomplete: "off" });
  const filterInput = h("input#ws-filter", { type: "search", placeholder: "config.lr < 0.01 and state = finished", value: filterText, "aria-label": "Filter runs", spellcheck: "false", autocomplete: "off" });
  const filterError = h("div#ws-filter-error.error-inline", { role: "status", "aria-live": "polite" });
  const groupSelect = h("select#ws-group", { "aria-label": "Group runs by" });
  const sortSelect = h("select#ws-sort", { "aria-label": "Sort runs by" });
  const countEl = h("span#ws-count.muted", { "aria-live": "polite" });
  const liveEl = h("span.live", { "aria-live": "polite" });
  const sidebar = new RunSidebar(entity, project, {
    toggle: (ids, visible) => setVisible(ids, visible),
    collapse: (key) => {
      collapsed.has(key) ? collapsed.delete(key) : collapsed.add(key);
      drawSidebar();
    },
  });
  const showAll = h("button.small", { type: "button", onclick: () => setVisible(runs.map((r) => r.run_id), true) }, "Show all");
  const hideAll = h("button.small", { type: "button", onclick: () => setVisible(runs.map((r) => r.run_id), false) }, "Hide all");
  const aside = h(
    "aside.ws-side",
    { "aria-label": "Runs of the workspace" },
    h("form.ws-filters", { role: "search", onsubmit: (e: Event) => { e.preventDefault(); applyFilter(); } }, searchInput, filterInput, h("button", { type: "submit" }, "Apply")),
    filterError,
    h("div.ws-side-row", null, h("label", { for: "ws-group" }, "Group"), groupSelect),
    h("div.ws-side-row", null, h("label", { for: "ws-sort" }, "Sort"), sortSelect),
    h("div.ws-side-row", null, countEl, h("span.spacer"), showAll, hideAll),
    sidebar.el,
  );

  const xSelect = h("select#ws-x", { "aria-label": "X axis of the line panels" });
  const smoothInput = h("input#ws-smoothing", { type: "range", min: 0, max: 0.99, step: 0.01, value: 0, "aria-label": "Smoothing" });
  const smoothOut = h("output", { for: "ws-smoothing" }, "0.00");
  const saveStatus = h("span#ws-saved.muted", { "aria-live": "polite" });
  const addBtn = h("button#ws-add", { type: "button" }, "+ Add panel");
  const toolbar = h(
    "div.toolbar.ws-toolbar",
    { role: "group", "aria-label": "Workspace settings" },
    h("label", { for: "ws-x" }, "X axis"),
    xSelect,
    h("label", { for: "ws-smoothing" }, "Smoothing"),
    smoothInput,
    smoothOut,
    addBtn,
    h("span.spacer"),
    liveEl,
    saveStatus,
    h("button#ws-save-project", { type: "button", title: "Make this layout the project's default for everyone", onclick: () => void saveProject() }, "Save as project default"),
    h("button#ws-reset", { type: "button", title: "Forget your own layout: back to the project's default", onclick: () => void resetLayout() }, "Reset"),
  );
  const sectionsEl = h("div#ws-sections.ws-sections", null, h("p.muted", null, "Loading…"));
  const main = h("div.ws-main", null, toolbar, h("div#ws-popover-slot"), sectionsEl);
  root.append(h("h1.sr-only", null, `Workspace of ${entity}/${project}`), projectTabs(entity, project, "workspace", query), h("div.workspace", null, aside, main));

  const resize = new ResizeObserver(() => {
    const next = columnsFor(sectionsEl.clientWidth || main.clientWidth);
    if (next !== cols) {
      cols = next;
      sectionsEl.style.setProperty("--cols", String(cols));
      for (const f of frames.values()) applySize(f);
    }
  });
  resize.observe(main);

  // -- the runs -------------------------------------------------------------------------------
  // a run's colour, computed once (the panels and the sidebar ask for every run on each update)
  const colors = new Map<number, string>();
  let colorsBase = base;
  function colorOf(run: Run): string {
    if (colorsBase !== base) {
      colors.clear();
      colorsBase = base;
    }
    let c = colors.get(run.pk);
    if (c === undefined) colors.set(run.pk, (c = runColor(run.pk, base)));
    return c;
  }

  const hidden = () => new Set(doc.runs.hidden);
  function isVisible(run: Run, index: number, hid: Set<string>, shownSet: Set<string>): boolean {
    if (hid.has(run.run_id)) return false;
    return index < doc.settings.maxVisible || shownSet.has(run.run_id);
  }

  function visibleRuns(): ShownRun[] {
    const hid = hidden();
    const shownSet = new Set(doc.runs.shown);
    const out: ShownRun[] = [];
    runs.forEach((run, i) => {
      if (isVisible(run, i, hid, shownSet)) out.push({ run, color: colorOf(run) });
    });
    return out;
  }

  let cachedVisible: ShownRun[] | null = null;
  let cachedGroups: RunGroup[] | null = null;
  function invalidate(): void {
    cachedVisible = null;
    cachedGroups = null;
  }

  const ctx: PanelContext = {
    entity,
    project,
    runs: () => (cachedVisible ??= visibleRuns()),
    groups: () => {
      if (!groupBy) return null;
      return (cachedGroups ??= groupRuns(ctx.runs(), groupBy));
    },
    groupBy: () => groupBy,
    settings: (): WorkspaceSettings => doc.settings,
    keys: () => keys,
    metrics: () => keys.metrics ?? [],
    series,
    save: () => scheduleSave(),
  };

  function setVisible(ids: string[], visible: boolean): void {
    const hid = hidden();
    const shownSet = new Set(doc.runs.shown);
    const index = new Map(runs.map((r, i) => [r.run_id, i]));
    for (const id of ids) {
      if (visible) {
        hid.delete(id);
        if ((index.get(id) ?? 0) >= doc.settings.maxVisible) shownSet.add(id);
      } else {
        hid.add(id);
        shownSet.delete(id);
      }
    }
    doc.runs.hidden = [...hid];
    doc.runs.shown = [...shownSet];
    invalidate();
    drawSidebar();
    updatePanels("runs");
    scheduleSave();
  }

  function drawSidebar(): void {
    const hid = hidden();
    const shownSet = new Set(doc.runs.shown);
    const side: SideRun[] = runs.map((run, i) => ({ run, color: colorOf(run), visible: isVisible(run, i, hid, shownSet) }));
    let groups: SideGroup[] | null = null;
    if (groupBy) {
      const vis = groupRuns(side.map((s) => ({ run: s.run, color: s.color })), groupBy);
      const byId = new Map(side.map((s) => [s.run.run_id, s]));
      // the group colours of the visible runs' groups (the panels' colours)
      const visibleColors = new Map((ctx.groups() ?? []).map((g) => [g.key, g.color]));
      groups = vis.map((g) => ({ key: g.key, label: g.label, color: visibleColors.get(g.key) ?? g.color, runs: g.runs.map((r) => byId.get(r.run.run_id)!), collapsed: collapsed.has(g.key) }));
    }
    sidebar.set(side, groups);
    const nVisible = ctx.runs().length;
    setText(countEl, `${nVisible} of ${total} run${total === 1 ? "" : "s"} shown${runs.length < total ? ` (the first ${runs.length} loaded)` : ""}`);
    countEl.dataset.visible = String(nVisible);
    countEl.dataset.total = String(total);
  }

  function filterJson(): string | null {
    const parts: unknown[] = [];
    const parsed = parseFilter(filterText);
    if (parsed) parts.push(parsed);
    if (search.trim()) parts.push({ name: { $regex: `(?i)${escapeRegex(search.trim())}` } });
    if (!parts.length) return null;
    return JSON.stringify(parts.length === 1 ? parts[0] : { $and: parts });
  }

  async function reloadRuns(): Promise<void> {
    const gen = ++loadGen;
    let spec: string | null;
    try {
      spec = filterJson();
      filterError.textContent = "";
      filterInput.removeAttribute("aria-invalid");
    } catch (err) {
      if (err instanceof FilterError) {
        filterError.textContent = err.message;
        filterInput.setAttribute("aria-invalid", "true");
        return;
      }
      throw err;
    }
    try {
      const res = await loadRuns(entity, project, spec, sort || null, RUN_CAP);
      if (gen !== loadGen || disposed) return;
      runs = res.runs;
      total = res.total;
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) {
        filterError.textContent = err.message;
        filterInput.setAttribute("aria-invalid", "true");
        return;
      }
      throw err;
    }
    invalidate();
    drawSidebar();
    updatePanels("runs");
    const live = runs.filter(isLive).length;
    setText(liveEl, live ? `● ${live} running` : "");
  }

  function saveView(): void {
    doc.view = { filter: filterText || undefined, search: search || undefined, group: groupBy || undefined, sort: sort || undefined };
    replaceQuery({ filter: filterText || null, search: search || null, group: groupBy || null, sort: sort || null, x: doc.settings.x !== "_step" ? doc.settings.x : null, refresh: query.get("refresh") });
    scheduleSave();
  }

  function applyFilter(): void {
    filterText = filterInput.value.trim();
    search = searchInput.value;
    saveView();
    void reloadRuns();
  }

  let searchTimer: number | undefined;
  searchInput.addEventListener("input", () => {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(applyFilter, 250);
  });
  groupSelect.addEventListener("change", () => {
    groupBy = groupSelect.value;
    saveView();
    invalidate();
    drawSidebar();
    updatePanels("runs");
  });
  sortSelect.addEventListener("change", () => {
    sort = sortSelect.value;
    saveView();
    void reloadRuns();
  });

  function fillSelects(): void {
    const fields = groupFields(keys);
    if (groupBy && !fields.includes(groupBy)) fields.push(groupBy);
    groupSelect.replaceChildren(h("option", { value: "" }, "no grouping"), ...fields.map((f) => h("option", { value: f, selected: f === groupBy }, f)));
    const sorts: [string, string][] = [
      ["", "newest first"],
      ["created_at", "oldest first"],
      ["name", "name"],
      ["state", "state"],
      ["-runtime", "longest first"],
      ...keys.summary.filter((k) => !k.startsWith("_")).flatMap((k): [string, string][] => [[`summary.${k}`, `${k} ↑`], [`-summary.${k}`, `${k} ↓`]]),
    ];
    if (sort && !sorts.some(([v]) => v === sort)) sorts.push([sort, sort]);
    sortSelect.replaceChildren(...sorts.map(([v, label]) => h("option", { value: v, selected: v === sort }, label)));
    const xs: [string, string][] = [
      ["_step", "Step"],
      ["step_metric", "Each run's step metric"],
      ["_runtime", "Relative time"],
      ["_timestamp", "Wall time"],
      ...(keys.metrics ?? []).filter((m) => !m.startsWith("_")).map((m): [string, string] => [m, m]),
    ];
    xSelect.replaceChildren(...xs.map(([v, label]) => h("option", { value: v, selected: v === doc.settings.x }, label)));
    smoothInput.value = String(doc.settings.smoothing);
    smoothOut.textContent = doc.settings.smoothing.toFixed(2);
  }

  xSelect.addEventListener("change", () => {
    doc.settings.x = xSelect.value;
    replaceQuery({ filter: filterText || null, search: search || null, group: groupBy || null, sort: sort || null, x: doc.settings.x !== "_step" ? doc.settings.x : null, refresh: query.get("refresh") });
    updatePanels("settings");
    scheduleSave();
  });
  smoothInput.addEventListener("input", () => {
    doc.settings.smoothing = Number(smoothInput.value);
    smoothOut.textContent = doc.settings.smoothing.toFixed(2);
    updatePanels("settings");
    scheduleSave();
  });

  // -- saving ---------------------------------------------------------------------------------
  const wsPath = projectPath(entity, project) + "/workspace";
  function scheduleSave(): void {
    window.clearTimeout(saveTimer);
    saveStatus.textContent = "saving…";
    saveTimer = window.setTimeout(() => void saveNow(), SAVE_DELAY_MS);
  }

  async function saveNow(scope: "user" | "project" = "user"): Promise<void> {
    window.clearTimeout(saveTimer);
    saveTimer = undefined;
    try {
      await put<SavedWorkspace>(wsPath, toJson(doc), { scope });
      savedScope = scope === "project" ? savedScope ?? "project" : "user";
      saveStatus.textContent = scope === "project" ? "saved as the project's default" : "saved";
      saveStatus.dataset.saved = String(Date.now());
    } catch (err) {
      saveStatus.textContent = `not saved: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  async function saveProject(): Promise<void> {
    await saveNow("project");
  }

  async function resetLayout(): Promise<void> {
    try {
      await del(wsPath, { scope: "user" });
    } catch {
      /* nothing saved */
    }
    const saved = await get<SavedWorkspace>(wsPath);
    doc = parseDoc(saved.doc);
    savedScope = saved.scope;
    autoLayout(doc, keys.metrics ?? [], sampleOf, runOf);
    fillSelects();
    invalidate();
    drawSidebar();
    renderSections();
    saveStatus.textContent = saved.scope === "project" ? "the project's default" : "automatic layout";
  }

  // -- panels ---------------------------------------------------------------------------------
  function runOf(metric: string): Run | undefined {
    return runs.find((r) => metric in r.summary);
  }

  function sampleOf(metric: string): Json | undefined {
    for (const r of runs) if (metric in r.summary) return r.summary[metric];
    return undefined;
  }

  function titleOf(spec: PanelSpec): string {
    return spec.title || panelKind(spec.kind)?.title(spec) || spec.kind;
  }

  function applySize(f: Frame): void {
    f.el.style.gridColumn = `span ${Math.min(cols, Math.max(1, f.spec.w))}`;
    f.body.style.minHeight = `${f.spec.h}px`;
  }

  const observer = new IntersectionObserver(
    (entries) => {
      for (const e of entries) {
        const id = (e.target as HTMLElement).dataset.panel!;
        const f = frames.get(id);
        if (!f) continue;
        f.seen = e.isIntersecting;
        if (e.isIntersecting && (!f.instance || f.dirty)) mount(f);
      }
    },
    { rootMargin: "400px 0px" },
  );

  function mount(f: Frame): void {
    const kind = panelKind(f.spec.kind);
    f.dirty = false;
    if (!kind) {
      f.body.replaceChildren(h("p.muted", null, `Unknown panel kind ${f.spec.kind}: this dashboard cannot draw it.`));
      return;
    }
    if (!f.instance) {
      f.instance = kind.create(ctx, f.spec);
      f.body.replaceChildren(f.instance.el);
    }
    const started = performance.now();
    void Promise.resolve(f.instance.update("runs"))
      .then(() => {
        if (!perf.firstDrawMs) perf.firstDrawMs = performance.now() - started;
        f.el.classList.add("ready");
      })
      .catch((err) => f.body.replaceChildren(errorBox(err)));
  }

  function updatePanels(reason: "runs" | "settings"): void {
    for (const f of frames.values()) {
      if (!f.instance) continue;
      if (f.seen) void Promise.resolve(f.instance.update(reason)).catch((err) => f.body.replaceChildren(errorBox(err)));
      else f.dirty = true;
    }
  }

  function frameFor(spec: PanelSpec, section: SectionSpec): Frame {
    const title = h("span.ws-title", { title: titleOf(spec) }, titleOf(spec));
    const settingsBtn = h("button.ws-tool.ws-settings", { type: "button", "aria-label": `Settings of ${titleOf(spec)}`, title: "Settings" }, "⚙");
    const removeBtn = h("button.ws-tool.ws-remove", { type: "button", "aria-label": `Remove ${titleOf(spec)}`, title: "Remove the panel" }, "×");
    const head = h("figcaption.ws-head", { draggable: "true", title: "Drag to move the panel" }, h("span.ws-grip", { "aria-hidden": "true" }, "⠿"), title, h("span.ws-tools", null, settingsBtn, removeBtn));
    const body = h("div.ws-body");
    const handle = h("div.ws-resize", { title: "Drag to resize", "aria-hidden": "true" });
    const metric = panelMetric(spec);
    const el = h("figure.ws-panel", { "data-panel": spec.id, "data-kind": spec.kind, "data-key": metric, "aria-label": `${kindLabel(spec.kind)} of ${titleOf(spec)}` }, head, body, handle);
    const f: Frame = { spec, el, body, instance: null, dirty: false, seen: false };
    applySize(f);
    removeBtn.addEventListener("click", () => removePanel(spec.id));
    settingsBtn.addEventListener("click", () => openSettings(f));
    head.addEventListener("dragstart", (e) => {
      e.dataTransfer?.setData("text/x-runyard-panel", spec.id);
      if (e.dataTransfer) e.dataTransfer.effectAllowed = "move";
      el.classList.add("dragging");
    });
    head.addEventListener("dragend", () => el.classList.remove("dragging"));
    el.addEventListener("dragover", (e) => {
      if (!e.dataTransfer?.types.includes("text/x-runyard-panel")) return;
      e.preventDefault();
      const r = el.getBoundingClientRect();
      el.classList.toggle("drop-before", e.clientX < r.left + r.width / 2);
      el.classList.toggle("drop-after", e.clientX >= r.left + r.width / 2);
    });
    el.addEventListener("dragleave", () => el.classList.remove("drop-before", "drop-after"));
    el.addEventListener("drop", (e) => {
      const id = e.dataTransfer?.getData("text/x-runyard-panel");
      const after = el.classList.contains("drop-after");
      el.classList.remove("drop-before", "drop-after");
      if (!id || id === spec.id) return;
      e.preventDefault();
      const sec = locate(doc, spec.id)?.section ?? section;
      const idx = sec.panels.findIndex((p) => p.id === spec.id);
      const before = after ? sec.panels[idx + 1]?.id ?? null : spec.id;
      if (movePanel(doc, id, sec.id, before === id ? null : before)) {
        renderSections();
        scheduleSave();
      }
    });
    handle.addEventListener("pointerdown", (e) => startResize(f, e));
    return f;
  }

  function kindLabel(kind: string): string {
    return panelKind(kind)?.label ?? kind;
  }

  function startResize(f: Frame, e: PointerEvent): void {
    e.preventDefault();
    const startX = e.clientX;
    const startY = e.clientY;
    const startW = f.el.getBoundingClientRect().width;
    const startH = f.spec.h;
    const grid = f.el.parentElement!;
    const gap = 12;
    const colW = (grid.clientWidth - gap * (cols - 1)) / cols;
    const move = (ev: PointerEvent) => {
      f.spec.h = Math.max(120, Math.min(1200, Math.round(startH + ev.clientY - startY)));
      f.spec.w = Math.max(1, Math.min(cols, Math.round((startW + ev.clientX - startX + gap) / (colW + gap))));
      applySize(f);
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      void Promise.resolve(f.instance?.update("size"));
      scheduleSave();
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  function removePanel(id: string): void {
    const at = locate(doc, id);
    if (!at) return;
    const [spec] = at.section.panels.splice(at.index, 1);
    const metric = panelMetric(spec);
    // an automatic panel removed stays removed (no panel left for its metric)
    const stillShown = metric !== null && doc.sections.some((s) => s.panels.some((p) => panelMetric(p) === metric));
    if (metric && !stillShown && !doc.removed.includes(metric)) doc.removed.push(metric);
    const f = frames.get(id);
    if (f) {
      f.instance?.destroy();
      observer.unobserve(f.el);
      f.el.remove();
      frames.delete(id);
    }
    if (!at.section.panels.length) renderSections();
    else updateSectionCount(at.section);
    scheduleSave();
  }

  function updateSectionCount(section: SectionSpec): void {
    const el = sectionsEl.querySelector(`[data-section-id="${CSS.escape(section.id)}"] .ws-section-count`);
    if (el) el.textContent = `(${section.panels.length})`;
  }

  function renderSections(): void {
    for (const f of frames.values()) {
      f.instance?.destroy();
      observer.unobserve(f.el);
    }
    frames.clear();
    sectionsEl.style.setProperty("--cols", String(cols));
    const out: HTMLElement[] = [];
    for (const section of doc.sections) {
      if (!section.panels.length) continue;
      const grid = h("div.ws-grid", { "data-section-grid": section.id });
      grid.addEventListener("dragover", (e) => {
        if (e.dataTransfer?.types.includes("text/x-runyard-panel")) e.preventDefault();
      });
      grid.addEventListener("drop", (e) => {
        const id = e.dataTransfer?.getData("text/x-runyard-panel");
        if (!id || (e.target as HTMLElement).closest(".ws-panel")) return;
        e.preventDefault();
        if (movePanel(doc, id, section.id, null)) {
          renderSections();
          scheduleSave();
        }
      });
      for (const spec of section.panels) {
        const f = frameFor(spec, section);
        frames.set(spec.id, f);
        grid.append(f.el);
      }
      const details = h(
        "details.ws-section",
        { open: !section.collapsed, "data-section": section.name, "data-section-id": section.id },
        h("summary", null, h("h2", null, section.name), " ", h("span.muted.ws-section-count", null, `(${section.panels.length})`)),
        grid,
      );
      details.addEventListener("toggle", () => {
        if (!!section.collapsed === !details.open) return; // the initial state, not a change
        section.collapsed = !details.open;
        scheduleSave();
      });
      out.push(details);
    }
    if (!out.length) out.push(h("p.muted.empty", null, runs.length ? "No panels: add one with “+ Add panel”." : "No runs in this project yet."));
    sectionsEl.replaceChildren(...out);
    for (const f of frames.values()) observer.observe(f.el);
    sectionsEl.dataset.panels = String(frames.size);
  }

  // -- popovers: settings of a panel, a new panel -----------------------------------------------
  const slot = main.querySelector("#ws-popover-slot")!;
  function closePopover(): void {
    slot.replaceChildren();
  }

  function fieldInput(field: SettingField, value: Json | undefined, onChange: (v: Json | undefined) => void): HTMLElement {
    const id = `ws-set-${field.name}`;
    let input: HTMLElement;
    if (field.type === "checkbox") {
      const box = h("input", { type: "checkbox", id, checked: value === true });
      box.addEventListener("change", () => onChange(box.checked || undefined));
      return h("div.ws-field.check", null, box, h("label", { for: id }, field.label));
    }
    if (field.type === "select") {
      const sel = h("select", { id }, ...field.options.map(([v, label]) => h("option", { value: v, selected: v === (value ?? "") }, label)));
      if (value !== undefined && !field.options.some(([v]) => v === value)) sel.append(h("option", { value: String(value), selected: true }, String(value)));
      sel.addEventListener("change", () => onChange(sel.value || undefined));
      input = sel;
    } else if (field.type === "number") {
      const num = h("input", { type: "number", id, min: field.min, max: field.max, step: field.step, value: typeof value === "number" ? value : "" });
      num.addEventListener("change", () => onChange(num.value === "" ? undefined : Number(num.value)));
      input = num;
    } else if (field.type === "fields") {
      const chosen = Array.isArray(value) ? value.map(String) : [];
      const sel = h("select", { id, multiple: true, size: 8 }, ...field.options.map((v) => h("option", { value: v, selected: chosen.includes(v) }, v)));
      sel.addEventListener("change", () => onChange([...sel.selectedOptions].map((o) => o.value)));
      input = sel;
    } else {
      const text = h("input", { type: "text", id, placeholder: field.placeholder, value: typeof value === "string" ? value : "" });
      text.addEventListener("change", () => onChange(text.value || undefined));
      input = text;
    }
    return h("div.ws-field", null, h("label", { for: id }, field.label), input);
  }

  function openSettings(f: Frame): void {
    const kind = panelKind(f.spec.kind);
    const spec = f.spec;
    const changed = (reason: "config" | "size") => {
      f.el.querySelector(".ws-title")!.textContent = titleOf(spec);
      const metric = panelMetric(spec);
      if (metric) f.el.dataset.key = metric;
      applySize(f);
      void Promise.resolve(f.instance?.update(reason));
      scheduleSave();
    };
    const common: HTMLElement[] = [
      fieldInput({ name: "title", label: "Title", type: "text", placeholder: kind?.title({ ...spec, title: "" }) ?? "" }, spec.title, (v) => {
        spec.title = typeof v === "string" ? v : undefined;
        changed("config");
      }),
      fieldInput({ name: "w", label: "Width (columns)", type: "select", options: [["1", "1"], ["2", "2"], ["3", "3"], ["4", "4"]] }, String(spec.w), (v) => {
        spec.w = Number(v) || 1;
        changed("size");
      }),
      fieldInput({ name: "h", label: "Height (px)", type: "number", min: 120, max: 1200, step: 10 }, spec.h, (v) => {
        spec.h = typeof v === "number" ? Math.max(120, Math.min(1200, v)) : DEFAULT_HEIGHT;
        changed("size");
      }),
    ];
    const own = (kind?.settings(ctx, spec) ?? []).map((field) =>
      fieldInput(field, spec.config[field.name], (v) => {
        if (v === undefined) delete spec.config[field.name];
        else spec.config[field.name] = v;
        changed("config");
      }),
    );
    const move = (delta: number) => {
      const at = locate(doc, spec.id);
      if (!at) return;
      const j = at.index + delta;
      if (j < 0 || j >= at.section.panels.length) return;
      const [p] = at.section.panels.splice(at.index, 1);
      at.section.panels.splice(j, 0, p);
      renderSections();
      scheduleSave();
      closePopover();
    };
    slot.replaceChildren(
      h(
        "div.ws-popover#ws-panel-settings",
        { role: "dialog", "aria-label": `Settings of ${titleOf(spec)}` },
        h("div.ws-pop-head", null, h("b", null, `${kind?.label ?? spec.kind}: ${titleOf(spec)}`), h("button#ws-settings-done", { type: "button", onclick: closePopover }, "Done")),
        h("div.ws-fields", null, ...common, ...own),
        h("div.ws-pop-foot", null, h("button", { type: "button", onclick: () => move(-1) }, "◀ Move earlier"), h("button", { type: "button", onclick: () => move(1) }, "Move later ▶")),
      ),
    );
    slot.querySelector<HTMLElement>("input, select")?.focus();
  }

  function openAdd(): void {
    const kinds = panelKinds();
    const kindSel = h("select#ws-add-kind", null, ...kinds.map((k) => h("option", { value: k.kind }, k.label)));
    const firstSel = h("select#ws-add-first");
    const sectionSel = h("select#ws-add-section");
    const fill = () => {
      const kind = panelKind(kindSel.value);
      const pick = kind?.pick ?? "none";
      const opts = pick === "metric" ? (keys.metrics ?? []).filter((m) => !m.startsWith("_")) : pick === "summary" ? keys.summary.filter((k) => !k.startsWith("_")) : [];
      firstSel.replaceChildren(...opts.map((o) => h("option", { value: o }, o)));
      firstSel.hidden = !opts.length;
      const names = [...new Set([...doc.sections.map((s) => s.name), ...(firstSel.value ? [sectionName(firstSel.value)] : [])])];
      sectionSel.replaceChildren(...names.map((n) => h("option", { value: n }, n)), h("option", { value: "__new" }, "a new section…"));
      if (firstSel.value) sectionSel.value = sectionName(firstSel.value);
    };
    kindSel.addEventListener("change", fill);
    firstSel.addEventListener("change", () => {
      if (firstSel.value) sectionSel.value = sectionName(firstSel.value);
    });
    const add = () => {
      const kind = panelKind(kindSel.value);
      if (!kind) return;
      let name = sectionSel.value;
      if (name === "__new") name = (prompt("Name of the new section", "custom") ?? "").trim() || "custom";
      let section = doc.sections.find((s) => s.name === name);
      if (!section) {
        section = { id: newId("s"), name, panels: [] };
        doc.sections.push(section);
      }
      const config = kind.defaults(ctx, firstSel.hidden ? undefined : firstSel.value || undefined);
      const metric = typeof config.key === "string" ? config.key : null;
      if (metric) doc.removed = doc.removed.filter((m) => m !== metric);
      section.panels.push({ id: newId(), kind: kind.kind, w: 1, h: DEFAULT_HEIGHT, config });
      section.collapsed = false;
      closePopover();
      renderSections();
      scheduleSave();
    };
    slot.replaceChildren(
      h(
        "div.ws-popover#ws-add-panel",
        { role: "dialog", "aria-label": "Add a panel" },
        h("div.ws-pop-head", null, h("b", null, "Add a panel"), h("button", { type: "button", onclick: closePopover }, "Cancel")),
        h(
          "div.ws-fields",
          null,
          h("div.ws-field", null, h("label", { for: "ws-add-kind" }, "Kind"), kindSel),
          h("div.ws-field", null, h("label", { for: "ws-add-first" }, "Value"), firstSel),
          h("div.ws-field", null, h("label", { for: "ws-add-section" }, "Section"), sectionSel),
        ),
        h("div.ws-pop-foot", null, h("button#ws-add-confirm", { type: "button", onclick: add }, "Add")),
      ),
    );
    fill();
    kindSel.focus();
  }
  addBtn.addEventListener("click", openAdd);
  main.addEventListener("keydown", (e) => {
    if ((e as KeyboardEvent).key === "Escape") closePopover();
  });

  // -- live -----------------------------------------------------------------------------------
  async function liveTick(): Promise<void> {
    if (disposed || document.hidden) return;
    const running = runs.filter((r) => isLive(r) || r.state === "pending");
    let fresh: Run[] = [];
    try {
      const res = await get<{ runs: Run[]; total: number }>("/runs", { entity, project, state: "running,pending", limit: 1000 });
      fresh = res.runs;
      // a run that stopped running: read it again for its final state and summary
      const gone = running.filter((r) => !fresh.some((f) => f.run_id === r.run_id)).map((r) => r.run_id);
      if (gone.length) {
        const done = await get<{ runs: Run[] }>("/runs", { entity, project, run_id: gone.join(","), limit: gone.length });
        fresh.push(...done.runs);
      }
      // new runs (matching the filter): the list again
      const spec = filterJson();
      const count = await get<{ total: number }>("/runs", { entity, project, filter: spec, limit: 1 });
      if (disposed) return;
      if (count.total !== total) {
        await reloadRuns();
        return;
      }
    } catch {
      return; // the next tick tries again
    }
    if (!fresh.length && !running.length) {
      liveEl.textContent = "";
      return;
    }
    const started = performance.now();
    const byId = new Map(fresh.map((r) => [r.run_id, r]));
    // what the sidebar shows of a run (and, grouped, where): unchanged for all, it is not drawn
    // again
    const sideChanged = !!groupBy || runs.some((r) => {
      const f = byId.get(r.run_id);
      return f !== undefined && (f.state !== r.state || f.name !== r.name);
    });
    runs = runs.map((r) => byId.get(r.run_id) ?? r);
    invalidate();
    const visibleIds = new Set(ctx.runs().map((r) => r.run.run_id));
    const live = running.filter((r) => visibleIds.has(r.run_id)).map((r) => r.run_id);
    let changed = new Set<string>();
    try {
      changed = await series.live(live);
    } catch {
      /* the next tick */
    }
    if (disposed) return;
    const t0 = performance.now();
    if (sideChanged) drawSidebar();
    for (const f of frames.values()) {
      if (!f.instance) continue;
      if (!f.seen) {
        f.dirty = true;
        continue;
      }
      if (f.spec.kind === "line") f.instance.live?.(changed);
      else void Promise.resolve(f.instance.update("runs"));
    }
    perf.lastLiveMs = performance.now() - t0;
    perf.liveUpdates++;
    const n = runs.filter(isLive).length;
    setText(liveEl, n ? `● ${n} running` : "");
    liveEl.dataset.updated = String(perf.liveUpdates);
    void started;
  }

  // -- start ----------------------------------------------------------------------------------
  (async () => {
    // everything the first screen needs at once: the saved document, the keys, the colour base
    // and the runs (read again only if the saved document has another filter or sort)
    const first = (() => {
      try {
        return loadRuns(entity, project, filterJson(), sort || null, RUN_CAP);
      } catch {
        return null; // a bad filter in the URL: reloadRuns says what is wrong
      }
    })();
    first?.catch(() => undefined);
    const [saved, k, b] = await Promise.all([
      get<SavedWorkspace>(wsPath).catch(() => ({ scope: null, doc: null }) as SavedWorkspace),
      get<ProjectKeys>(`${projectPath(entity, project)}/keys`).catch(() => ({ config: [], summary: [], metrics: [] }) as ProjectKeys),
      colorBase(entity, project).catch(() => 0),
    ]);
    if (disposed) return;
    doc = parseDoc(saved.doc as Doc | null);
    savedScope = saved.scope;
    keys = k;
    base = b;
    const before = [filterText, search, sort];
    if (!urlHas.filter && doc.view.filter) filterText = doc.view.filter;
    if (!urlHas.search && doc.view.search) search = doc.view.search;
    if (!urlHas.group && doc.view.group) groupBy = doc.view.group;
    if (!urlHas.sort && doc.view.sort) sort = doc.view.sort;
    if (query.get("x")) doc.settings.x = query.get("x")!;
    filterInput.value = filterText;
    searchInput.value = search;
    saveStatus.textContent = savedScope === "user" ? "your layout" : savedScope === "project" ? "the project's default" : "automatic layout";
    fillSelects();
    const same = before[0] === filterText && before[1] === search && before[2] === sort;
    const got = same && first ? await first.catch(() => null) : null;
    if (disposed) return;
    if (got) {
      runs = got.runs;
      total = got.total;
      invalidate();
      drawSidebar();
      const n = runs.filter(isLive).length;
      liveEl.textContent = n ? `● ${n} running` : "";
    } else await reloadRuns();
    if (disposed) return;
    autoLayout(doc, keys.metrics ?? [], sampleOf, runOf);
    renderSections();
    root.dataset.ready = "true";
    liveTimer = window.setInterval(() => void liveTick(), refreshMs(query, LIVE_MS));
  })().catch((err) => sectionsEl.replaceChildren(errorBox(err)));

  return {
    dispose() {
      disposed = true;
      window.clearInterval(liveTimer);
      window.clearTimeout(searchTimer);
      if (saveTimer !== undefined) {
        window.clearTimeout(saveTimer);
        void saveNow();
      }
      observer.disconnect();
      resize.disconnect();
      for (const f of frames.values()) f.instance?.destroy();
    },
  };
}

