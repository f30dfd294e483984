// The runs table of a project: server-side sort and filter (runyard.query), rows fetched in
// pages as they scroll into view and rendered in a fixed-row-height window (10,000 runs stay
// fluid), a column picker over every config and summary key, group by a column, selection
// for comparison, and live refresh while runs are running.

import { ApiError, get, type ProjectKeys, type Run } from "../api";
import { FilterError, parseFilter } from "../filter";
import type { View } from "../main";
import { setCrumbs, setTitle } from "../main";
import { projectTabs } from "../workspace/tabs";
import { asNumber, errorBox, exactValue, fieldValue, flatten, fmtAgo, fmtDateTime, fmtDuration, fmtNumber, fmtSummary, fmtTime, fmtValue, h, hashFor, replaceQuery, stateBadge } from "../util";

const ROW_H = 32;
const PAGE = 100;
const OVERSCAN = 10;
const POLL_MS = 4000;

interface Column {
  field: string;
  label: string;
  width: number;
  render: (run: Run) => Node | string;
  numeric?: boolean;
  /** stays in view when the table scrolls sideways */
  pinned?: boolean;
  /** where the field comes from, shown before its name: config or summary */
  source?: string;
}

// Metric names whose smaller values are better: their first click sorts ascending.
const LOWER_IS_BETTER = /(loss|err|error|perplexity|ppl|mse|mae|rmse|wer|cer|regret|nll|cost|latency|time|runtime|distance|diverg)/i;
const HIGHER_IS_BETTER = /(acc|accuracy|f1|auc|precision|recall|score|reward|return|bleu|rouge|map|iou|dice|top\d|psnr|ssim|r2)/i;

/** The direction of a first click on a column: newest first for dates, best first for
 * metrics (a run's define_metric goal when it has one, else the name: loss ascending, accuracy
 * descending), A to Z otherwise. */
export function firstSortDescending(field: string, runs: Run[] = []): boolean {
  if (field === "created_at") return true;
  if (!field.startsWith("summary.")) return false;
  const key = field.slice(8).replace(/\.(min|max|mean|last|first|best)$/, "");
  for (const r of runs) {
    const def = (r.metric_defs ?? []).find((d) => d.name === key && d.goal);
    if (def) return def.goal === "maximize";
  }
  const leaf = key.split("/").pop() ?? key;
  if (HIGHER_IS_BETTER.test(leaf) && !LOWER_IS_BETTER.test(leaf)) return true;
  return false;
}

type Item = { kind: "run"; index: number; run: Run | undefined } | { kind: "group"; key: string; count: number; runs: Run[]; collapsed: boolean };

function baseColumns(entity: string, project: string): Column[] {
  return [
    {
      field: "name",
      label: "Name",
      width: 220,
      pinned: true,
      render: (r) => h("a", { href: hashFor(["r", entity, project, r.run_id]), title: `${r.name} (${r.run_id})`, tabindex: -1 }, r.name),
    },
    { field: "state", label: "State", width: 96, render: (r) => stateBadge(r.state) },
    { field: "group", label: "Group", width: 150, render: (r) => r.group ?? "" },
    { field: "tags", label: "Tags", width: 140, render: (r) => h("span", null, r.tags.map((t) => h("span.tag", null, t))) },
    { field: "created_at", label: "Created", width: 158, render: (r) => h("span", { title: `${fmtDateTime(r.created_at)} (${fmtAgo(r.created_at)})` }, fmtTime(r.created_at)) },
    { field: "runtime", label: "Runtime", width: 92, numeric: true, render: (r) => fmtDuration(r.runtime) },
  ];
}

function extraColumn(field: string): Column {
  const m = /^(config|summary)\.(.*)$/.exec(field);
  const label = m ? m[2] : field;
  return {
    field,
    label,
    source: m ? m[1] : undefined,
    width: Math.max(104, Math.min(280, 8 * label.length + (m ? 64 : 28))),
    numeric: true,
    render: (r) => {
      const v = fieldValue(r, field);
      const text = m && m[1] === "summary" ? fmtSummary(m[2], v) : fmtValue(v);
      return h("span", { title: exactValue(v) }, text);
    },
  };
}

export function runsView(root: HTMLElement, entity: string, project: string, query: URLSearchParams): View {
  setCrumbs([["Projects", "#/"], [`${entity}/${project}`, null]]);
  setTitle(`${entity}/${project}`);

  let filterText = query.get("filter") ?? "";
  let sort = query.get("sort") ?? "-created_at";
  let cols: string[] = (query.get("cols") ?? "").split(",").filter(Boolean);
  let colsFromUrl = query.has("cols");
  let groupBy = query.get("group") ?? "";
  const selected = new Set<string>((query.get("sel") ?? "").split(",").filter(Boolean));
  const collapsed = new Set<string>();

  let filterJson: string | null = null;
  let total = 0;
  let generation = 0;
  let pages = new Map<number, Run[]>();
  const inflight = new Set<string>();
  let grouped: Run[] | null = null;
  let items: Item[] = [];
  let active = 0;
  let running = 0;
  let timer: number | undefined;
  let disposed = false;
  let keys: ProjectKeys | null = null;

  // -- toolbar -------------------------------------------------------------------------------
  const filterInput = h("input#runs-filter", {
    type: "search",
    value: filterText,
    placeholder: "config.optimizer.lr < 0.01 and state = finished",
    "aria-describedby": "filter-help",
    spellcheck: "false",
    autocomplete: "off",
  });
  const filterError = h("div#filter-error.error-inline", { role: "status", "aria-live": "polite" });
  const countEl = h("span#runs-count.muted", { "aria-live": "polite" });
  const liveEl = h("span.live", { "aria-live": "polite" });
  const compareBtn = h("a.button#compare-btn", { href: "#", "aria-disabled": "true" }, "Compare");
  const groupSelect = h("select#group-by", null);
  const colsBtn = h("button#cols-btn", { type: "button", "aria-haspopup": "dialog", "aria-expanded": "false" }, "Columns");
  const picker = h("div.popover#col-picker", { role: "dialog", "aria-label": "Choose columns", hidden: true });
  const toolbar = h(
    "form.toolbar",
    { role: "search", onsubmit: (e: Event) => { e.preventDefault(); applyFilter(); } },
    h("label", { for: "runs-filter" }, "Filter"),
    filterInput,
    h("button", { type: "submit" }, "Apply"),
    h("label", { for: "group-by" }, "Group by"),
    groupSelect,
    h("span.pickwrap", null, colsBtn, picker),
    compareBtn,
    h("span.spacer"),
    liveEl,
    countEl,
  );
  const help = h(
    "details.help#filter-help",
    null,
    h("summary", null, "Filter syntax"),
    h(
      "p",
      null,
      "FIELD OP VALUE joined by ",
      h("code", null, "and"),
      " / ",
      h("code", null, "or"),
      " (and ",
      h("code", null, "not"),
      ", parentheses). OP: ",
      h("code", null, "= != < <= > >= ~"),
      " (regex) or ",
      h("code", null, "in [a, b]"),
      ". Fields: state, name, group, tags, created_at, runtime, host, config.<dotted.key>, summary.<key>. Example: ",
      h("code", null, "config.optimizer.lr < 0.01 and state = finished"),
    ),
  );

  // -- grid ----------------------------------------------------------------------------------
  const headerRow = h("div.grid-row.grid-head", { role: "row" });
  const body = h("div.grid-body", { role: "rowgroup" });
  const grid = h("div.grid#runs-grid", {
    role: "grid",
    tabindex: 0,
    "aria-label": `Runs of ${entity}/${project}`,
    "aria-multiselectable": "true",
  }, h("div.grid-headwrap", { role: "rowgroup" }, headerRow), body);
  const message = h("div");
  root.append(h("h1.sr-only", null, `Runs of ${entity}/${project}`), projectTabs(entity, project, "runs", query), toolbar, help, message, grid);

  let columns: Column[] = [];
  function template(): string {
    return ["36px", ...columns.map((c) => `${c.width}px`)].join(" ");
  }

  function setColumns(): void {
    columns = [...baseColumns(entity, project), ...cols.map(extraColumn)];
    const tpl = template();
    grid.style.setProperty("--cols", tpl);
    const [sortField, desc] = [sort.replace(/^[-+]/, ""), sort.startsWith("-")];
    const allBox = h("input", { type: "checkbox", "aria-label": "Select the visible runs", tabindex: -1 });
    allBox.addEventListener("change", () => {
      for (const it of visibleItems()) if (it.kind === "run" && it.run) allBox.checked ? selected.add(it.run.run_id) : selected.delete(it.run.run_id);
      selectionChanged();
      render();
    });
    headerRow.replaceChildren(
      h("div.cell.pinned-box", { role: "columnheader" }, allBox),
      ...columns.map((c) => {
        const sorted = c.field === sortField;
        return h(
          "div.cell",
          { role: "columnheader", "aria-sort": sorted ? (desc ? "descending" : "ascending") : "none", class: [c.numeric ? "num" : "", c.pinned ? "pinned" : ""].join(" ").trim() || null, "data-field": c.field },
          h(
            "button.sort",
            { type: "button", title: `Sort by ${c.field}`, onclick: () => setSort(c.field) },
            c.source ? h("span.colsrc", { class: `src-${c.source}` }, c.source) : null,
            c.label,
            sorted ? (desc ? " ▼" : " ▲") : "",
          ),
        );
      }),
    );
    const options = [...new Set(["", "group", "state", "job_type", "tags", "host", ...cols, ...(keys?.config ?? []).map((k) => `config.${k}`)])];
    if (groupBy && !options.includes(groupBy)) options.push(groupBy);
    groupSelect.replaceChildren(...options.map((o) => h("option", { value: o, selected: o === groupBy }, o ? o : "none")));
  }

  function saveUrl(): void {
    replaceQuery({ filter: filterText || null, sort: sort !== "-created_at" ? sort : null, cols: colsFromUrl ? cols.join(",") || "," : null, group: groupBy || null });
  }

  function setSort(field: string): void {
    const cur = sort.replace(/^[-+]/, "");
    if (cur === field) sort = sort.startsWith("-") ? field : `-${field}`; // again: reversed
    else {
      const loaded = [...pages.values()].flat();
      sort = firstSortDescending(field, loaded) ? `-${field}` : field;
    }
    saveUrl();
    setColumns();
    reload();
  }

  function applyFilter(): void {
    filterText = filterInput.value.trim();
    try {
      const parsed = parseFilter(filterText);
      filterJson = parsed ? JSON.stringify(parsed) : null;
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
    saveUrl();
    reload();
  }

  groupSelect.addEventListener("change", () => {
    groupBy = groupSelect.value;
    saveUrl();
    reload();
  });

  function selectionChanged(): void {
    const ids = [...selected];
    compareBtn.textContent = ids.length ? `Compare ${ids.length}` : "Compare";
    if (ids.length) {
      compareBtn.setAttribute("href", hashFor(["compare", entity, project], { runs: ids.join(",") }));
      compareBtn.removeAttribute("aria-disabled");
    } else {
      compareBtn.setAttribute("href", "#");
      compareBtn.setAttribute("aria-disabled", "true");
    }
  }
  compareBtn.addEventListener("click", (e) => {
    if (!selected.size) e.preventDefault();
  });

  // -- data ----------------------------------------------------------------------------------
  function params(offset: number, limit: number): Record<string, unknown> {
    // newest first is the server's own order: no sort to apply
    return { entity, project, filter: filterJson, sort: sort === "-created_at" ? null : sort, limit, offset };
  }

  function showError(err: unknown): void {
    if (err instanceof ApiError && err.status === 422) {
      filterError.textContent = err.message;
      filterInput.setAttribute("aria-invalid", "true");
    } else message.replaceChildren(errorBox(err));
  }

  async function fetchPage(page: number, gen: number): Promise<void> {
    const key = `${gen}:${page}`;
    if (inflight.has(key)) return;
    inflight.add(key);
    try {
      const res = await get<{ runs: Run[]; total: number }>("/runs", params(page * PAGE, PAGE));
      if (gen !== generation || disposed) return;
      pages.set(page, res.runs);
      if (res.total !== total) {
        total = res.total;
        rebuildItems();
      }
      if (!colsFromUrl && !cols.length && res.runs.length) defaultColumns(res.runs);
      message.replaceChildren();
      render();
    } catch (err) {
      if (gen === generation) showError(err);
    } finally {
      inflight.delete(key);
    }
  }

  async function fetchAll(gen: number): Promise<void> {
    const all: Run[] = [];
    message.replaceChildren(h("p.muted", null, "Loading every matching run to group them…"));
    try {
      for (;;) {
        const res = await get<{ runs: Run[]; total: number }>("/runs", params(all.length, 1000));
        if (gen !== generation || disposed) return;
        all.push(...res.runs);
        total = res.total;
        if (!res.runs.length || all.length >= res.total) break;
      }
      grouped = all;
      message.replaceChildren();
      rebuildItems();
      render();
    } catch (err) {
      if (gen === generation) showError(err);
    }
  }

  function defaultColumns(runs: Run[]): void {
    // Without columns in the URL: a few config keys and summary metrics of the newest runs.
    const conf = new Set<string>();
    const summ = new Set<string>();
    for (const r of runs.slice(0, 20)) {
      for (const [k, v] of flatten(r.config)) if (k && (typeof v !== "object" || v === null) && conf.size < 3) conf.add(`config.${k}`);
      for (const [k, v] of Object.entries(r.summary)) if (!k.startsWith("_") && asNumber(v) !== null && summ.size < 3) summ.add(`summary.${k}`);
    }
    cols = [...conf, ...summ];
    setColumns();
  }

  function groupKey(run: Run): string {
    const v = fieldValue(run, groupBy);
    const text = fmtValue(v);
    return text === "" ? "(none)" : text;
  }

  function rebuildItems(): void {
    if (groupBy && grouped) {
      const groups = new Map<string, Run[]>();
      for (const r of grouped) {
        const k = groupKey(r);
        if (!groups.has(k)) groups.set(k, []);
        groups.get(k)!.push(r);
      }
      items = [];
      for (const [key, runs] of groups) {
        const isCollapsed = collapsed.has(key);
        items.push({ kind: "group", key, count: runs.length, runs, collapsed: isCollapsed });
        if (!isCollapsed) runs.forEach((run, i) => items.push({ kind: "run", index: i, run }));
      }
    } else {
      items = Array.from({ length: total }, (_, i) => ({ kind: "run", index: i, run: undefined }) as Item);
    }
    body.style.height = `${items.length * ROW_H}px`;
    grid.setAttribute("aria-rowcount", String(items.length + 1));
    countEl.textContent = `${total} run${total === 1 ? "" : "s"}${groupBy && grouped ? ` in ${items.filter((i) => i.kind === "group").length} groups` : ""}`;
    if (active >= items.length) active = Math.max(0, items.length - 1);
  }

  function runAt(i: number): Run | undefined {
    const it = items[i];
    if (!it || it.kind !== "run") return undefined;
    if (it.run) return it.run;
    return pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  }

  function range(): [number, number] {
    const head = headerRow.offsetHeight || ROW_H;
    const top = Math.max(0, grid.scrollTop);
    const height = Math.max(ROW_H, grid.clientHeight - head);
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(items.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    return [first, last];
  }

  function visibleItems(): Item[] {
    const [a, b] = range();
    return items.slice(a, b).map((it, j) => (it.kind === "run" ? { ...it, run: runAt(a + j) } : it));
  }

  function renderRow(i: number): HTMLElement {
    const it = items[i];
    const style = `top:${i * ROW_H}px`;
    const id = `row-${i}`;
    if (it.kind === "group") {
      const numeric = columns.map((c) => {
        if (!c.field.startsWith("config.") && !c.field.startsWith("summary.") && c.field !== "runtime") return "";
        const vals = it.runs.map((r) => asNumber(fieldValue(r, c.field))).filter((v): v is number => v !== null);
        if (!vals.length) return "";
        const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
        return c.field === "runtime" ? `mean ${fmtDuration(mean)}` : `mean ${fmtNumber(mean)}`;
      });
      return h(
        "div.grid-row.group-row",
        { role: "row", id, style, "aria-rowindex": i + 2, "aria-expanded": String(!it.collapsed), class: i === active ? "active" : null, "data-group": it.key },
        h("div.cell", { role: "gridcell" }, h("button.twisty", { type: "button", tabindex: -1, "aria-label": it.collapsed ? "Expand group" : "Collapse group", onclick: () => toggleGroup(it.key) }, it.collapsed ? "▸" : "▾")),
        ...columns.map((c, j) =>
          h("div.cell", { role: "gridcell", class: c.numeric ? "num" : null }, j === 0 ? h("b", null, `${it.key} (${it.count})`) : numeric[j]),
        ),
      );
    }
    const run = runAt(i);
    if (!run) {
      return h("div.grid-row.loading", { role: "row", id, style, "aria-rowindex": i + 2 }, h("div.cell", { role: "gridcell" }, "…"));
    }
    const checked = selected.has(run.run_id);
    const box = h("input", { type: "checkbox", tabindex: -1, "aria-label": `Select ${run.name}`, checked });
    box.addEventListener("change", () => {
      box.checked ? selected.add(run.run_id) : selected.delete(run.run_id);
      selectionChanged();
      row.setAttribute("aria-selected", String(box.checked));
    });
    const row = h(
      "div.grid-row",
      { role: "row", id, style, "aria-rowindex": i + 2, "aria-selected": String(checked), class: i === active ? "active" : null, "data-run": run.run_id, "data-state": run.state },
      h("div.cell.pinned-box", { role: "gridcell" }, box),
      ...columns.map((c) => h("div.cell", { role: "gridcell", class: [c.numeric ? "num" : "", c.pinned ? "pinned" : ""].join(" ").trim() || null, "data-field": c.field }, c.render(run))),
    );
    row.addEventListener("click", (e) => {
      if ((e.target as HTMLElement).closest("a,input,button")) return;
      active = i;
      render();
    });
    return row;
  }

  let frame = 0;
  function render(): void {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (disposed) return;
      const [a, b] = range();
      const rows: HTMLElement[] = [];
      const needed = new Set<number>();
      for (let i = a; i < b; i++) {
        rows.push(renderRow(i));
        if (!groupBy && !runAt(i)) needed.add(Math.floor(i / PAGE));
      }
      body.replaceChildren(...rows);
      if (items.length) grid.setAttribute("aria-activedescendant", `row-${active}`);
      else grid.removeAttribute("aria-activedescendant");
      if (!items.length && total === 0 && !inflight.size && pages.size) {
        body.replaceChildren(h("div.empty", null, filterText ? "No run matches the filter." : "No runs in this project."));
      }
      for (const p of needed) void fetchPage(p, generation);
      const loadedRunning = rows.some((r) => r.dataset.state === "running");
      if (loadedRunning) running = Math.max(running, 1);
    });
  }

  function toggleGroup(key: string): void {
    collapsed.has(key) ? collapsed.delete(key) : collapsed.add(key);
    rebuildItems();
    render();
  }

  function reload(): void {
    generation++;
    pages = new Map();
    grouped = null;
    total = 0;
    items = [];
    active = 0;
    grid.scrollTop = 0;
    message.replaceChildren();
    filterError.textContent = "";
    if (groupBy) void fetchAll(generation);
    else void fetchPage(0, generation).then(() => {
      rebuildItems();
      render();
    });
  }

  // Live refresh: while any run of the project is running, re-read the rows in view.
  async function poll(): Promise<void> {
    if (disposed || document.hidden) return;
    try {
      const res = await get<{ runs: Run[]; total: number }>("/runs", { entity, project, state: "running", limit: 1 });
      const wasRunning = running;
      running = res.total;
      liveEl.textContent = running ? `● ${running} running` : "";
      if (!running && !wasRunning) return;
      const gen = generation;
      if (groupBy) {
        await fetchAll(gen);
        return;
      }
      const [a, b] = range();
      const want = new Set<number>();
      for (let i = a; i < Math.max(b, a + 1); i++) want.add(Math.floor(i / PAGE));
      const fresh = new Map<number, Run[]>();
      let newTotal = total;
      for (const p of want) {
        const r = await get<{ runs: Run[]; total: number }>("/runs", params(p * PAGE, PAGE));
        fresh.set(p, r.runs);
        newTotal = r.total;
      }
      if (gen !== generation || disposed) return;
      pages = fresh;
      if (newTotal !== total) {
        total = newTotal;
        rebuildItems();
      }
      render();
    } catch {
      /* the next tick tries again */
    }
  }

  // -- keyboard ------------------------------------------------------------------------------
  function moveTo(i: number): void {
    if (!items.length) return;
    active = Math.max(0, Math.min(items.length - 1, i));
    const head = headerRow.offsetHeight || ROW_H;
    const top = active * ROW_H;
    if (top < grid.scrollTop) grid.scrollTop = top;
    else if (top + ROW_H > grid.scrollTop + grid.clientHeight - head) grid.scrollTop = top + ROW_H - (grid.clientHeight - head);
    render();
  }
  grid.addEventListener("keydown", (ev) => {
    const e = ev as KeyboardEvent;
    const pageRows = Math.max(1, Math.floor((grid.clientHeight - ROW_H) / ROW_H) - 1);
    const it = items[active];
    switch (e.key) {
      case "ArrowDown": moveTo(active + 1); break;
      case "ArrowUp": moveTo(active - 1); break;
      case "PageDown": moveTo(active + pageRows); break;
      case "PageUp": moveTo(active - pageRows); break;
      case "Home": moveTo(0); break;
      case "End": moveTo(items.length - 1); break;
      case "Enter": {
        if (it?.kind === "group") toggleGroup(it.key);
        else {
          const run = runAt(active);
          if (run) location.hash = hashFor(["r", entity, project, run.run_id]);
        }
        break;
      }
      case " ": {
        const run = runAt(active);
        if (run) {
          selected.has(run.run_id) ? selected.delete(run.run_id) : selected.add(run.run_id);
          selectionChanged();
          render();
        } else if (it?.kind === "group") toggleGroup(it.key);
        break;
      }
      default:
        return;
    }
    e.preventDefault();
  });
  grid.addEventListener("scroll", render, { passive: true });
  const resizeObs = new ResizeObserver(() => render());
  resizeObs.observe(grid);

  // -- column picker -------------------------------------------------------------------------
  async function loadKeys(): Promise<ProjectKeys> {
    if (keys) return keys;
    try {
      keys = await get<ProjectKeys>(`/projects/${encodeURIComponent(entity)}/${encodeURIComponent(project)}/keys`);
    } catch {
      // Older servers: the keys of the runs loaded so far.
      const conf = new Set<string>();
      const summ = new Set<string>();
      for (const page of pages.values()) for (const r of page) {
        for (const [k] of flatten(r.config)) if (k) conf.add(k);
        for (const k of Object.keys(r.summary)) summ.add(k);
      }
      keys = { config: [...conf].sort(), summary: [...summ].sort() };
    }
    return keys;
  }

  function closePicker(): void {
    picker.hidden = true;
    colsBtn.setAttribute("aria-expanded", "false");
  }

  async function openPicker(): Promise<void> {
    picker.hidden = false;
    colsBtn.setAttribute("aria-expanded", "true");
    picker.replaceChildren(h("p.muted", null, "Loading keys…"));
    const k = await loadKeys();
    const all = [...k.config.map((x) => `config.${x}`), ...k.summary.map((x) => `summary.${x}`)];
    const search = h("input#col-search", { type: "search", placeholder: "Search keys", "aria-label": "Search columns" });
    const list = h("ul.picklist", { "aria-label": "Columns" });
    const draw = () => {
      const q = search.value.toLowerCase();
      const shown = all.filter((f) => f.toLowerCase().includes(q)).slice(0, 300);
      list.replaceChildren(
        ...shown.map((f) => {
          const id = `col-${f.replace(/[^\w-]/g, "_")}`;
          const box = h("input", { type: "checkbox", id, checked: cols.includes(f), "data-field": f });
          box.addEventListener("change", () => {
            cols = box.checked ? [...cols, f] : cols.filter((c) => c !== f);
            colsFromUrl = true;
            saveUrl();
            setColumns();
            render();
          });
          return h("li", null, box, h("label", { for: id }, f));
        }),
      );
    };
    search.addEventListener("input", draw);
    draw();
    picker.replaceChildren(
      h("div.pickhead", null, search, h("button", { type: "button", onclick: closePicker }, "Done")),
      list,
    );
    search.focus();
  }
  colsBtn.addEventListener("click", () => (picker.hidden ? void openPicker() : closePicker()));
  picker.addEventListener("keydown", (ev) => {
    const e = ev as KeyboardEvent;
    if (e.key === "Escape") {
      closePicker();
      colsBtn.focus();
    }
  });

  // -- start ---------------------------------------------------------------------------------
  setColumns();
  selectionChanged();
  try {
    const parsed = parseFilter(filterText);
    filterJson = parsed ? JSON.stringify(parsed) : null;
  } catch (err) {
    filterError.textContent = err instanceof Error ? err.message : String(err);
  }
  root.append(filterError);
  toolbar.after(filterError);
  reload();
  void loadKeys().then(() => {
    if (!disposed) setColumns();
  });
  timer = window.setInterval(() => void poll(), POLL_MS);
  void poll();

  return {
    dispose() {
      disposed = true;
      window.clearInterval(timer);
      resizeObs.disconnect();
      if (frame) cancelAnimationFrame(frame);
    },
  };
}
