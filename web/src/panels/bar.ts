// Bar panels: a summary value of each visible run (or each group's mean, with its min–max as
// a whisker), as horizontal bars sorted by value or in the sidebar's order.

import type { Doc } from "../api";
import { linearTicks } from "../charts/ticks";
import { asNumber, fieldValue, fmtNumber, h } from "../util";
import type { PanelContext, PanelInstance, PanelKind, PanelSpec, SettingField } from "./types";

interface Bar {
  id: string;
  label: string;
  color: string;
  value: number;
  lo?: number;
  hi?: number;
}

function summaryField(key: string): string {
  return key.startsWith("summary.") || key.startsWith("config.") ? key : `summary.${key}`;
}

class BarPanel implements PanelInstance {
  readonly el: HTMLElement;

  constructor(
    private ctx: PanelContext,
    private spec: PanelSpec,
  ) {
    this.el = h("div.bar-panel");
  }

  update(): void {
    const key = String(this.spec.config.key ?? "");
    if (!key) {
      this.el.replaceChildren(h("p.muted", null, "No value chosen: open the panel's settings."));
      return;
    }
    const field = summaryField(key);
    const bars: Bar[] = [];
    const groups = this.ctx.groups();
    if (groups) {
      for (const g of groups) {
        const vals = g.runs.map((r) => asNumber(fieldValue(r.run, field))).filter((v): v is number => v !== null);
        if (!vals.length) continue;
        const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
        bars.push({ id: `group:${g.key}`, label: `${g.label} (${vals.length})`, color: g.color, value: mean, lo: Math.min(...vals), hi: Math.max(...vals) });
      }
    } else {
      for (const r of this.ctx.runs()) {
        const v = asNumber(fieldValue(r.run, field));
        if (v !== null) bars.push({ id: r.run.run_id, label: r.run.name, color: r.color, value: v });
      }
    }
    const sort = String(this.spec.config.sort ?? "value");
    if (sort === "value") bars.sort((a, b) => b.value - a.value);
    if (sort === "value-asc") bars.sort((a, b) => a.value - b.value);
    this.el.dataset.bars = String(bars.length);
    if (!bars.length) {
      this.el.replaceChildren(h("p.muted", null, `No visible run has ${field}.`));
      return;
    }
    let lo = Math.min(0, ...bars.map((b) => b.lo ?? b.value));
    let hi = Math.max(0, ...bars.map((b) => b.hi ?? b.value));
    if (hi === lo) hi = lo + 1;
    const ticks = linearTicks(lo, hi, 4);
    lo = Math.min(lo, ticks[0]?.value ?? lo);
    hi = Math.max(hi, ticks[ticks.length - 1]?.value ?? hi);
    const pos = (v: number) => `${(((v - lo) / (hi - lo)) * 100).toFixed(3)}%`;
    const rows = bars.map((b) => {
      const a = Math.min(0, b.value);
      const z = Math.max(0, b.value);
      return h(
        "div.bar-row",
        { "data-series": b.id, title: `${b.label}: ${fmtNumber(b.value)}${b.lo !== undefined ? ` (min ${fmtNumber(b.lo)}, max ${fmtNumber(b.hi!)})` : ""}` },
        h("span.bar-label", null, h("i.swatch", { style: `background:${b.color}` }), b.label),
        h(
          "span.bar-track",
          null,
          h("span.bar-fill", { style: `left:${pos(a)};width:calc(${pos(z)} - ${pos(a)});background:${b.color}` }),
          b.lo !== undefined ? h("span.bar-whisker", { style: `left:${pos(b.lo)};width:calc(${pos(b.hi!)} - ${pos(b.lo)})` }) : null,
        ),
        h("span.bar-value", null, fmtNumber(b.value)),
      );
    });
    const axis = h(
      "div.bar-axis",
      { "data-ticks": JSON.stringify(ticks.map((t) => [t.value, t.label])) },
      h("span.bar-label"),
      h("span.bar-track", null, ticks.map((t) => h("span.bar-tick", { style: `left:${pos(t.value)}` }, t.label))),
      h("span.bar-value"),
    );
    this.el.replaceChildren(h("div.bar-rows", { style: `max-height:${this.spec.h}px` }, rows), axis);
    this.el.classList.add("drawn");
  }

  destroy(): void {}
}

export const barPanel: PanelKind = {
  kind: "bar",
  label: "Bar chart (summary values)",
  pick: "summary",
  defaults(ctx: PanelContext, first?: string): Doc {
    return { key: first ?? ctx.keys().summary.find((k) => !k.startsWith("_")) ?? "", sort: "value" };
  },
  title(spec: PanelSpec): string {
    return String(spec.config.key || "Bar chart");
  },
  settings(ctx: PanelContext): SettingField[] {
    return [
      { name: "key", label: "Summary value", type: "select", options: ctx.keys().summary.map((k) => [k, k]) },
      { name: "sort", label: "Order", type: "select", options: [["value", "largest first"], ["value-asc", "smallest first"], ["none", "the runs' order"]] },
    ];
  },
  create(ctx: PanelContext, spec: PanelSpec): PanelInstance {
    return new BarPanel(ctx, spec);
  },
};
