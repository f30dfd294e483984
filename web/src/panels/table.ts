// Table panels (W&B's table panel): each visible run's latest version of a logged table (its
// summary keeps the last `table-file` reference: a table logged again shows its newest rows),
// the runs' rows together with a "run" column when there are several. Rows are virtualised
// (only those in view are in the DOM), columns sort by a click on their header (up, down, as
// logged), a filter keeps the rows whose text matches, and image cells are thumbnails.

import type { Doc, Json } from "../api";
import { asDoc, fileJson, fileSrc, mediaKind } from "../media/data";
import { fmtNumber, h } from "../util";
import type { PanelContext, PanelInstance, PanelKind, PanelSpec, SettingField, ShownRun } from "./types";

const MAX_RUNS = 10;
const OVERSCAN = 8;

interface TableFile {
  columns: string[];
  data: Json[][];
}

interface Row {
  run: ShownRun;
  cells: Json[];
  /** the row's text for the filter */
  text: string;
}

function isImage(v: Json): boolean {
  const d = asDoc(v);
  return !!d && d._type === "image-file" && typeof d.path === "string";
}

function cellText(v: Json): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return fmtNumber(v);
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return String(v);
  const d = asDoc(v);
  if (d && typeof d._type === "string") return String(d.caption ?? d._type);
  return JSON.stringify(v);
}

/** Order of two cells: numbers by value, then text; empty cells last. */
export function compareCells(a: Json, b: Json): number {
  const ea = a === null || a === undefined || a === "";
  const eb = b === null || b === undefined || b === "";
  if (ea || eb) return ea === eb ? 0 : ea ? 1 : -1;
  if (typeof a === "number" && typeof b === "number") return Number.isNaN(a) ? 1 : Number.isNaN(b) ? -1 : a - b;
  if (typeof a === "number") return -1;
  if (typeof b === "number") return 1;
  return cellText(a).localeCompare(cellText(b), undefined, { numeric: true });
}

class TablePanel implements PanelInstance {
  readonly el: HTMLElement;
  private filter: HTMLInputElement;
  private countEl: HTMLElement;
  private scroller: HTMLElement;
  private headEl: HTMLElement;
  private bodyEl: HTMLElement;
  private columns: string[] = [];
  private rows: Row[] = [];
  private view: Row[] = [];
  private rowH = 26;
  private widths: number[] = [];
  private gen = 0;
  private raf = 0;
  private multi = false;

  constructor(
    private ctx: PanelContext,
    private spec: PanelSpec,
  ) {
    this.filter = h("input.table-filter", { type: "search", placeholder: "Filter rows", "aria-label": `Filter the rows of ${spec.config.key}` });
    this.filter.addEventListener("input", () => this.applyView());
    this.countEl = h("span.muted.table-count", { "aria-live": "polite" });
    this.headEl = h("div.vt-head", { role: "row" });
    this.bodyEl = h("div.vt-body", { role: "rowgroup" });
    this.scroller = h("div.vt", { role: "table", "aria-label": `Table ${spec.config.key}`, tabindex: 0 }, this.headEl, this.bodyEl);
    this.scroller.addEventListener("scroll", () => {
      cancelAnimationFrame(this.raf);
      this.raf = requestAnimationFrame(() => this.paint());
    });
    this.el = h("div.table-panel", { "data-media": "table" }, h("div.table-tools", null, this.filter, this.countEl), this.scroller);
  }

  async update(reason: string): Promise<void> {
    this.scroller.style.height = `${Math.max(100, this.spec.h - 34)}px`;
    if (reason === "size") return this.paint();
    const gen = ++this.gen;
    const key = String(this.spec.config.key ?? "");
    const runs = this.ctx.runs().slice(0, Number(this.spec.config.maxRuns) || MAX_RUNS).filter((r) => mediaKind(r.run.summary[key]) === "table");
    const files = await Promise.all(
      runs.map(async (r) => {
        const ref = asDoc(r.run.summary[key])!;
        const t = await fileJson<TableFile>(this.ctx.entity, this.ctx.project, r.run.run_id, String(ref.path));
        return { run: r, table: t };
      }),
    );
    if (gen !== this.gen) return;
    this.multi = files.length > 1;
    const cols: string[] = [];
    for (const f of files) for (const c of f.table.columns ?? []) if (!cols.includes(String(c))) cols.push(String(c));
    this.columns = cols;
    this.rows = [];
    let images = false;
    for (const f of files) {
      const at = (f.table.columns ?? []).map((c) => cols.indexOf(String(c)));
      for (const raw of f.table.data ?? []) {
        const cells: Json[] = new Array(cols.length).fill(null);
        raw.forEach((v, i) => {
          if (at[i] >= 0) cells[at[i]] = v;
          if (!images && isImage(v)) images = true;
        });
        this.rows.push({ run: f.run, cells, text: cells.map(cellText).join("\u0000").toLowerCase() });
      }
    }
    this.rowH = images ? 72 : 26;
    const imageCols = cols.map((_, i) => this.rows.some((r) => isImage(r.cells[i])));
    this.widths = [...(this.multi ? [120] : []), ...cols.map((_, i) => (imageCols[i] ? 90 : 130))];
    this.el.dataset.runs = String(files.length);
    this.drawHead();
    this.applyView();
    this.el.classList.add("drawn");
    if (!files.length) this.bodyEl.replaceChildren(h("p.muted", null, `No visible run logged a table ${key}.`));
  }

  private sortState(): { col: number; desc: boolean } | null {
    const s = asDoc(this.spec.config.sort as Json);
    if (!s || typeof s.col !== "number") return null;
    return { col: s.col, desc: s.desc === true };
  }

  private drawHead(): void {
    const sort = this.sortState();
    const names = [...(this.multi ? ["run"] : []), ...this.columns];
    this.headEl.replaceChildren(
      ...names.map((name, i) => {
        const col = this.multi ? i - 1 : i;
        const dir = sort && sort.col === col ? (sort.desc ? "descending" : "ascending") : "none";
        const b = h("button.vt-th", { type: "button", role: "columnheader", "aria-sort": dir, "data-col": name, style: `width:${this.widths[i]}px`, title: `Sort by ${name}` }, name, dir === "ascending" ? " ▲" : dir === "descending" ? " ▼" : "");
        b.addEventListener("click", () => this.toggleSort(col));
        return b;
      }),
    );
  }

  private toggleSort(col: number): void {
    const s = this.sortState();
    if (!s || s.col !== col) this.spec.config.sort = { col, desc: false };
    else if (!s.desc) this.spec.config.sort = { col, desc: true };
    else delete this.spec.config.sort;
    this.ctx.save(this.spec.config);
    this.drawHead();
    this.applyView();
  }

  private applyView(): void {
    const q = this.filter.value.trim().toLowerCase();
    this.view = q ? this.rows.filter((r) => r.text.includes(q) || r.run.run.name.toLowerCase().includes(q)) : [...this.rows];
    const s = this.sortState();
    if (s) {
      const get = (r: Row): Json => (s.col < 0 ? r.run.run.name : r.cells[s.col]);
      this.view.sort((a, b) => {
        const c = compareCells(get(a), get(b));
        return s.desc ? -c : c;
      });
    }
    this.countEl.textContent = `${this.view.length.toLocaleString()}${q ? ` of ${this.rows.length.toLocaleString()}` : ""} rows`;
    this.el.dataset.rows = String(this.view.length);
    this.bodyEl.style.height = `${this.view.length * this.rowH}px`;
    this.bodyEl.replaceChildren();
    this.paint();
  }

  private cell(r: Row, v: Json, width: number): HTMLElement {
    const el = h("div.vt-cell", { role: "cell", style: `width:${width}px` });
    if (isImage(v)) {
      const d = asDoc(v)!;
      const img = h("img.vt-thumb", { alt: String(d.caption ?? "image"), loading: "lazy", decoding: "async" });
      if (Number(d.width) < 64 && Number(d.height) < 64) img.classList.add("pixelated");
      void fileSrc(this.ctx.entity, this.ctx.project, r.run.run.run_id, String(d.path)).then((src) => (img.src = src));
      el.append(img);
    } else {
      const text = cellText(v);
      el.textContent = text;
      el.title = text;
      if (typeof v === "number") el.classList.add("num");
    }
    return el;
  }

  /** the rows in view (and a few either side) */
  private paint(): void {
    const top = this.scroller.scrollTop;
    const hgt = this.scroller.clientHeight || this.spec.h;
    const first = Math.max(0, Math.floor(top / this.rowH) - OVERSCAN);
    const last = Math.min(this.view.length, Math.ceil((top + hgt) / this.rowH) + OVERSCAN);
    const have = new Map<number, HTMLElement>();
    for (const el of [...this.bodyEl.children] as HTMLElement[]) {
      const i = Number(el.dataset.index);
      if (i >= first && i < last) have.set(i, el);
      else el.remove();
    }
    for (let i = first; i < last; i++) {
      if (have.has(i)) continue;
      const r = this.view[i];
      const cells = [...(this.multi ? [this.cell(r, r.run.run.name, this.widths[0])] : []), ...r.cells.map((v, j) => this.cell(r, v, this.widths[j + (this.multi ? 1 : 0)]))];
      if (this.multi) cells[0].prepend(h("i.swatch", { style: `background:${r.run.color}` }));
      this.bodyEl.append(h("div.vt-row", { role: "row", "data-index": i, style: `top:${i * this.rowH}px;height:${this.rowH}px` }, ...cells));
    }
    this.el.dataset.rendered = String(this.bodyEl.children.length);
  }

  destroy(): void {
    this.gen++;
    cancelAnimationFrame(this.raf);
  }
}

export const tablePanel: PanelKind = {
  kind: "table",
  label: "Table (the latest version)",
  pick: "metric",
  defaults(_ctx: PanelContext, first?: string): Doc {
    return { key: first ?? "" };
  },
  title(spec: PanelSpec): string {
    return String(spec.config.key || "Table");
  },
  settings(ctx: PanelContext): SettingField[] {
    return [
      { name: "key", label: "Key", type: "select", options: ctx.metrics().map((m) => [m, m]) },
      { name: "maxRuns", label: `Runs shown at most (default ${MAX_RUNS})`, type: "number", min: 1, max: 100, step: 1 },
    ];
  },
  create(ctx: PanelContext, spec: PanelSpec): PanelInstance {
    return new TablePanel(ctx, spec);
  },
  auto(metric: string, sample: Json | undefined): Doc | null {
    return mediaKind(sample) === "table" ? { key: metric } : null;
  },
};
