// Parallel-coordinates panels over the visible runs: any fields as axes (config values, summary
// values), lines in the runs' colours or tinted by the last axis; drag on an axis to keep the
// runs inside a range (the others are dimmed).

import type { Doc } from "../api";
import { ParallelCoordinates, type PCAxis } from "../charts/parcoords";
import { asNumber, fieldValue, h } from "../util";
import { fieldOptions } from "./scatter";
import type { PanelContext, PanelInstance, PanelKind, PanelSpec, SettingField } from "./types";

class ParcoordsPanel implements PanelInstance {
  readonly el: HTMLElement;
  private chart: ParallelCoordinates | null = null;

  constructor(
    private ctx: PanelContext,
    private spec: PanelSpec,
  ) {
    this.el = h("div.parcoords-panel");
  }

  update(): void {
    const fields = Array.isArray(this.spec.config.fields) ? this.spec.config.fields.map(String).filter(Boolean) : [];
    const runs = this.ctx.runs();
    if (fields.length < 2) {
      this.el.replaceChildren(h("p.muted", null, "Choose at least two fields in the panel's settings."));
      return;
    }
    const axes: PCAxis[] = fields.map((f) => ({
      name: f,
      values: runs.map((r) => {
        const v = fieldValue(r.run, f);
        const n = asNumber(v);
        if (n !== null && typeof v !== "boolean") return n;
        return v === undefined || v === null ? null : typeof v === "object" ? JSON.stringify(v) : String(v);
      }),
      log: this.spec.config.log === true,
    }));
    const last = axes[axes.length - 1].values.map((v) => (typeof v === "number" ? v : null));
    this.chart?.destroy();
    this.chart = new ParallelCoordinates(axes, last, () => undefined, true);
    if (this.spec.config.color !== "metric") {
      const colorOf = new Map<string, string>();
      for (const g of this.ctx.groups() ?? []) for (const r of g.runs) colorOf.set(r.run.run_id, g.color);
      this.chart.lineColors = runs.map((r) => colorOf.get(r.run.run_id) ?? r.color);
    }
    this.el.replaceChildren(this.chart.el);
    this.chart.setHeight(this.spec.h);
    this.el.dataset.lines = String(runs.length);
    this.el.classList.add("drawn");
  }

  destroy(): void {
    this.chart?.destroy();
  }
}

export const parcoordsPanel: PanelKind = {
  kind: "parcoords",
  label: "Parallel coordinates",
  pick: "none",
  defaults(ctx: PanelContext): Doc {
    const keys = ctx.keys();
    const config = keys.config.slice(0, 4).map((k) => `config.${k}`);
    const metric = keys.summary.find((k) => !k.startsWith("_"));
    return { fields: [...config, ...(metric ? [`summary.${metric}`] : [])], color: "runs" };
  },
  title(): string {
    return "Parallel coordinates";
  },
  settings(ctx: PanelContext): SettingField[] {
    return [
      { name: "fields", label: "Axes", type: "fields", options: fieldOptions(ctx).map(([v]) => v) },
      { name: "color", label: "Colour", type: "select", options: [["runs", "the runs' colours"], ["metric", "by the last axis"]] },
      { name: "log", label: "Log axes (where all values are positive)", type: "checkbox" },
    ];
  },
  create(ctx: PanelContext, spec: PanelSpec): PanelInstance {
    return new ParcoordsPanel(ctx, spec);
  },
};
