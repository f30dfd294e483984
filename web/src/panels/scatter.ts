// Scatter panels: one point per visible run, any two fields (a summary value against a config
// value by default), in the runs' colours (their group's when grouped).

import type { Doc } from "../api";
import { Scatter, type ScatterPoint } from "../charts/scatter";
import { asNumber, fieldValue, h } from "../util";
import type { PanelContext, PanelInstance, PanelKind, PanelSpec, SettingField } from "./types";

export function fieldOptions(ctx: PanelContext): [string, string][] {
  const keys = ctx.keys();
  return [
    ...keys.summary.filter((k) => !k.startsWith("_")).map((k): [string, string] => [`summary.${k}`, `summary.${k}`]),
    ...keys.config.map((k): [string, string] => [`config.${k}`, `config.${k}`]),
    ["runtime", "runtime"],
    ["created_at", "created_at"],
    ["last_step", "last_step"],
  ];
}

function pointValue(v: unknown): number | string | null {
  const n = asNumber(v);
  if (n !== null) return n;
  if (typeof v === "string") return v;
  return null;
}

class ScatterPanel implements PanelInstance {
  readonly el: HTMLElement;
  private chart: Scatter | null = null;

  constructor(
    private ctx: PanelContext,
    private spec: PanelSpec,
  ) {
    this.el = h("div.scatter-panel");
  }

  update(): void {
    const x = String(this.spec.config.x ?? "");
    const y = String(this.spec.config.y ?? "");
    if (!x || !y) {
      this.el.replaceChildren(h("p.muted", null, "Choose the x and y fields in the panel's settings."));
      return;
    }
    const colorOf = new Map<string, string>();
    const groups = this.ctx.groups();
    if (groups) for (const g of groups) for (const r of g.runs) colorOf.set(r.run.run_id, g.color);
    const points: ScatterPoint[] = this.ctx.runs().map((r) => ({
      id: r.run.run_id,
      x: pointValue(fieldValue(r.run, x)),
      y: asNumber(fieldValue(r.run, y)),
      label: r.run.name,
      color: colorOf.get(r.run.run_id) ?? r.color,
    }));
    const logX = this.spec.config.logX === true;
    const logY = this.spec.config.logY === true;
    if (!this.chart) {
      this.chart = new Scatter(points, x, y, logX);
      this.el.replaceChildren(this.chart.el);
    }
    this.chart.logY = logY;
    this.chart.setHeight(this.spec.h);
    this.chart.set(points, x, logX, y, logY);
    this.el.dataset.points = this.chart.el.querySelector("canvas")?.dataset.points ?? "0";
    this.el.classList.add("drawn");
  }

  destroy(): void {
    this.chart?.destroy();
  }
}

export const scatterPanel: PanelKind = {
  kind: "scatter",
  label: "Scatter plot (summary against config)",
  pick: "summary",
  defaults(ctx: PanelContext, first?: string): Doc {
    const keys = ctx.keys();
    const y = first ? (first.includes(".") && /^(summary|config)\./.test(first) ? first : `summary.${first}`) : `summary.${keys.summary.find((k) => !k.startsWith("_")) ?? ""}`;
    return { x: keys.config.length ? `config.${keys.config[0]}` : "runtime", y };
  },
  title(spec: PanelSpec): string {
    return `${String(spec.config.y ?? "?")} vs ${String(spec.config.x ?? "?")}`;
  },
  settings(ctx: PanelContext): SettingField[] {
    const options = fieldOptions(ctx);
    return [
      { name: "x", label: "X", type: "select", options },
      { name: "y", label: "Y", type: "select", options },
      { name: "logX", label: "Log x", type: "checkbox" },
      { name: "logY", label: "Log y", type: "checkbox" },
    ];
  },
  create(ctx: PanelContext, spec: PanelSpec): PanelInstance {
    return new ScatterPanel(ctx, spec);
  },
};
