// The workspace's runs sidebar: one row per run (or per group, with its runs below), each with
// an eye that shows or hides it on every panel and its colour. Rows are rendered in a fixed
// row-height window, so thousands of runs scroll smoothly.

import type { Run } from "../api";
import { h, hashFor } from "../util";

export interface SideRun {
  run: Run;
  color: string;
  visible: boolean;
}

export interface SideGroup {
  key: string;
  label: string;
  color: string;
  runs: SideRun[];
  collapsed: boolean;
}

type Row = { kind: "run"; r: SideRun; depth: number } | { kind: "group"; g: SideGroup };

/** A row's element in the window, what it shows (`sig`) and where (`index`). */
interface Shown {
  el: HTMLElement;
  sig: string;
  index: number;
}

const ROW_H = 28;
const OVERSCAN = 8;

export interface SidebarHandlers {
  /** show (true) or hide the runs */
  toggle(runIds: string[], visible: boolean): void;
  /** fold or unfold a group's rows */
  collapse(groupKey: string): void;
}

function keyOf(row: Row): string {
  return row.kind === "group" ? `g\u0000${row.g.key}` : `r\u0000${row.r.run.run_id}`;
}

/** What a row shows: a row whose signature is unchanged keeps its element as it is. */
function sigOf(row: Row): string {
  if (row.kind === "group") {
    const g = row.g;
    const shown = g.runs.reduce((n, r) => n + (r.visible ? 1 : 0), 0);
    return `${g.label}\u0000${g.color}\u0000${g.collapsed}\u0000${shown}\u0000${g.runs.length}`;
  }
  const r = row.r;
  return `${r.run.name}\u0000${r.color}\u0000${r.visible}\u0000${r.run.state}\u0000${row.depth}`;
}

export class RunSidebar {
  readonly el: HTMLElement;
  private scroller: HTMLElement;
  private body: HTMLElement;
  private rows: Row[] = [];
  /** the rows of the last render by key (the handlers read the current row, not the one an
   * element was built for) */
  private byKey = new Map<string, Row>();
  private shown = new Map<string, Shown>();
  private height = 0;
  private top = 0;
  private viewHeight = 0;
  private frame = 0;

  constructor(
    private entity: string,
    private project: string,
    private handlers: SidebarHandlers,
  ) {
    this.body = h("div.ws-runs-body", { role: "list" });
    this.scroller = h("div.ws-runs", { "aria-label": "Runs", tabindex: 0 }, this.body);
    // the scroll position and the height are kept from their events: a render reads no
    // layout (a read after the panels' writes would force one)
    this.scroller.addEventListener(
      "scroll",
      () => {
        this.top = this.scroller.scrollTop;
        this.schedule();
      },
      { passive: true },
    );
    new ResizeObserver((entries) => {
      for (const e of entries) this.viewHeight = e.contentRect.height;
      this.schedule();
    }).observe(this.scroller);
    this.el = this.scroller;
  }

  /** The rows to show. Only rows in the scrolled window have elements, and of those only the
   * ones whose content changed are rebuilt (a live update that changes nothing in the window
   * touches no element). */
  set(runs: SideRun[], groups: SideGroup[] | null): void {
    const rows: Row[] = [];
    if (groups) {
      for (const g of groups) {
        rows.push({ kind: "group", g });
        if (!g.collapsed) for (const r of g.runs) rows.push({ kind: "run", r, depth: 1 });
      }
    } else for (const r of runs) rows.push({ kind: "run", r, depth: 0 });
    this.rows = rows;
    const height = rows.length * ROW_H;
    if (height !== this.height) {
      this.height = height;
      this.body.style.height = `${height}px`;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private eye(visible: boolean, label: string, onclick: () => void): HTMLElement {
    return h(
      "button.eye",
      { type: "button", "aria-pressed": String(visible), "aria-label": `${visible ? "Hide" : "Show"} ${label}`, title: visible ? "Shown on the panels: click to hide" : "Hidden: click to show", onclick },
      visible ? "◉" : "○",
    );
  }

  private build(row: Row, key: string): HTMLElement {
    if (row.kind === "group") {
      const g = row.g;
      const shown = g.runs.filter((r) => r.visible).length;
      return h(
        "div.ws-run.ws-group",
        { role: "listitem", "data-group": g.key },
        this.eye(shown > 0, `group ${g.label}`, () => {
          const cur = this.byKey.get(key);
          if (cur?.kind !== "group") return;
          const runs = cur.g.runs;
          this.handlers.toggle(runs.map((r) => r.run.run_id), !runs.some((r) => r.visible));
        }),
        h("i.swatch", { style: `background:${g.color}` }),
        h("button.twisty", { type: "button", "aria-expanded": String(!g.collapsed), "aria-label": `${g.collapsed ? "Unfold" : "Fold"} group ${g.label}`, onclick: () => this.handlers.collapse(g.key) }, g.collapsed ? "▸" : "▾"),
        h("span.ws-run-name", { title: g.label }, g.label),
        h("span.muted.ws-count", null, `${shown}/${g.runs.length}`),
      );
    }
    const r = row.r;
    return h(
      "div.ws-run",
      { role: "listitem", "data-run": r.run.run_id, "data-visible": String(r.visible), "data-color": r.color, class: row.depth ? "nested" : null },
      this.eye(r.visible, r.run.name, () => {
        const cur = this.byKey.get(key);
        if (cur?.kind === "run") this.handlers.toggle([cur.r.run.run_id], !cur.r.visible);
      }),
      h("i.swatch", { style: `background:${r.color}` }),
      h("a.ws-run-name", { href: hashFor(["r", this.entity, this.project, r.run.run_id]), title: `${r.run.name} (${r.run.run_id})` }, r.run.name),
      h("span.state-dot", { class: `state-${r.run.state}`, title: r.run.state, "aria-label": r.run.state }),
    );
  }

  private render(): void {
    const height = this.viewHeight || 400;
    const first = Math.max(0, Math.floor(this.top / ROW_H) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((this.top + height) / ROW_H) + OVERSCAN);
    const next = new Map<string, Shown>();
    const byKey = new Map<string, Row>();
    for (let i = first; i < last; i++) {
      const row = this.rows[i];
      const key = keyOf(row);
      if (next.has(key)) continue; // a run listed twice: its first row
      byKey.set(key, row);
      const sig = sigOf(row);
      let s = this.shown.get(key);
      if (!s || s.sig !== sig) s = { el: this.build(row, key), sig, index: -1 };
      if (s.index !== i) {
        s.el.style.top = `${i * ROW_H}px`;
        s.index = i;
      }
      next.set(key, s);
    }
    for (const [key, s] of this.shown) if (next.get(key) !== s) s.el.remove();
    // the elements in the rows' order (the list's order for screen readers and tab order),
    // moving only those out of place
    let at: ChildNode | null = this.body.firstChild;
    for (const s of next.values()) {
      if (s.el === at) at = at.nextSibling;
      else this.body.insertBefore(s.el, at);
    }
    this.shown = next;
    this.byKey = byKey;
  }
}
