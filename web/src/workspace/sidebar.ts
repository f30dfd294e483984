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

const ROW_H = 28;
const OVERSCAN = 8;

export interface SidebarHandlers {
  /** show (true) or hide the runs */
  toggle(runIds: string[], visible: boolean): void;
  /** fold or unfold a group's rows */
  collapse(groupKey: string): void;
}

export class RunSidebar {
  readonly el: HTMLElement;
  private scroller: HTMLElement;
  private body: HTMLElement;
  private rows: Row[] = [];
  private frame = 0;

  constructor(
    private entity: string,
    private project: string,
    private handlers: SidebarHandlers,
  ) {
    this.body = h("div.ws-runs-body", { role: "list" });
    this.scroller = h("div.ws-runs", { "aria-label": "Runs", tabindex: 0 }, this.body);
    this.scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.scroller);
    this.el = this.scroller;
  }

  set(runs: SideRun[], groups: SideGroup[] | null): void {
    const rows: Row[] = [];
    if (groups) {
      for (const g of groups) {
        rows.push({ kind: "group", g });
        if (!g.collapsed) for (const r of g.runs) rows.push({ kind: "run", r, depth: 1 });
      }
    } else for (const r of runs) rows.push({ kind: "run", r, depth: 0 });
    this.rows = rows;
    this.body.style.height = `${rows.length * ROW_H}px`;
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

  private render(): void {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 400;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const out: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const row = this.rows[i];
      const style = `top:${i * ROW_H}px`;
      if (row.kind === "group") {
        const g = row.g;
        const shown = g.runs.filter((r) => r.visible).length;
        out.push(
          h(
            "div.ws-run.ws-group",
            { role: "listitem", style, "data-group": g.key },
            this.eye(shown > 0, `group ${g.label}`, () => this.handlers.toggle(g.runs.map((r) => r.run.run_id), shown === 0)),
            h("i.swatch", { style: `background:${g.color}` }),
            h("button.twisty", { type: "button", "aria-expanded": String(!g.collapsed), "aria-label": `${g.collapsed ? "Unfold" : "Fold"} group ${g.label}`, onclick: () => this.handlers.collapse(g.key) }, g.collapsed ? "▸" : "▾"),
            h("span.ws-run-name", { title: g.label }, g.label),
            h("span.muted.ws-count", null, `${shown}/${g.runs.length}`),
          ),
        );
        continue;
      }
      const r = row.r;
      out.push(
        h(
          "div.ws-run",
          { role: "listitem", style, "data-run": r.run.run_id, "data-visible": String(r.visible), "data-color": r.color, class: row.depth ? "nested" : null },
          this.eye(r.visible, r.run.name, () => this.handlers.toggle([r.run.run_id], !r.visible)),
          h("i.swatch", { style: `background:${r.color}` }),
          h("a.ws-run-name", { href: hashFor(["r", this.entity, this.project, r.run.run_id]), title: `${r.run.name} (${r.run.run_id})` }, r.run.name),
          h("span.state-dot", { class: `state-${r.run.state}`, title: r.run.state, "aria-label": r.run.state }),
        ),
      );
    }
    this.body.replaceChildren(...out);
  }
}
