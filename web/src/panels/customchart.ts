// W&B custom charts (`runyard.plot.*` / `wandb.plot.*`): a table logged under `<key>_table` and
// a chart spec in the run's meta (`meta.wandb.config.visualize[<key>]`: W&B's
// `config._wandb.visualize`), whose `panelDefId` says what to draw and `fieldSettings` which
// columns play which role. Drawn natively (no Vega): line and line series, ROC/PR curves
// (area-under-curve, a line per class), scatter, bar, histogram (the values binned) and the
// confusion matrix (a heat map of counts). A spec of the user's own is shown as its table.
// Each run's latest table (its summary) is drawn, coloured by run when there are several.

import type { Doc, Json, Run } from "../api";
import { Plot, type PlotSeries } from "../charts/plot";
import { Scatter, type ScatterPoint } from "../charts/scatter";
import { linearTicks } from "../charts/ticks";
import { colorAt } from "../colors";
import { asDoc, fileJson, mediaKind } from "../media/data";
import { fmtNumber, h } from "../util";
import { tablePanel } from "./table";
import type { PanelContext, PanelInstance, PanelKind, PanelSpec, SettingField, ShownRun } from "./types";

const MAX_RUNS = 10;

export interface ChartSpec {
  chart: string;
  panelDefId: string;
  fields: Record<string, string>;
  strings: Record<string, string>;
}

/** The table a spec draws (`userQuery...summaryTable` `tableKey`). */
function tableKeyOf(panelConfig: Doc): string | null {
  const stack: Json[] = [panelConfig.userQuery ?? null];
  while (stack.length) {
    const node = stack.pop();
    if (Array.isArray(node)) stack.push(...node);
    else if (node && typeof node === "object") {
      if (node.name === "summaryTable" && Array.isArray(node.args)) {
        for (const a of node.args) {
          const d = asDoc(a);
          if (d?.name === "tableKey" && typeof d.value === "string") return d.value;
        }
      }
      stack.push(...Object.values(node));
    }
  }
  return null;
}

/** The custom chart of a run drawing the table logged under `tableKey`, if any. */
export function chartSpec(run: Run | undefined, tableKey: string): ChartSpec | null {
  const vis = asDoc(asDoc(asDoc(asDoc(run?.meta?.wandb)?.config)?.visualize));
  if (!vis) return null;
  for (const [chart, raw] of Object.entries(vis)) {
    const pc = asDoc(asDoc(raw)?.panel_config);
    if (!pc) continue;
    const key = tableKeyOf(pc) ?? `${chart}_table`;
    if (key !== tableKey) continue;
    const strs = (o: Json | undefined): Record<string, string> => Object.fromEntries(Object.entries(asDoc(o) ?? {}).filter(([, v]) => typeof v === "string") as [string, string][]);
    return { chart, panelDefId: String(pc.panelDefId ?? ""), fields: strs(pc.fieldSettings), strings: strs(pc.stringSettings) };
  }
  return null;
}

interface TableFile {
  columns: string[];
  data: Json[][];
}

const SVG = "http://www.w3.org/2000/svg";
function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function num(v: Json | undefined): number {
  return typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
}

/** Horizontal bars (bar charts) or vertical ones (histograms of binned values): an SVG with its
 * axes. `range`: the vertical bars are equal bins of [lo, hi], ticked at round values of it
 * (else each bar is labelled). */
function barsSvg(bars: { label: string; value: number; color: string }[], width: number, height: number, vertical: boolean, xTitle: string, range?: [number, number]): SVGSVGElement {
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "cc-svg" });
  const max = Math.max(0, ...bars.map((b) => b.value));
  const min = Math.min(0, ...bars.map((b) => b.value));
  const span = max - min || 1;
  if (vertical) {
    const L = 40, B = 34, T = 6;
    const pw = width - L - 8;
    const ph = height - B - T;
    const bw = pw / Math.max(1, bars.length);
    for (const t of linearTicks(min, max || 1, 4)) {
      const y = T + ph - ((t.value - min) / span) * ph;
      svg.append(s("line", { x1: L, x2: L + pw, y1: y, y2: y, stroke: "#eef0f3" }), s("text", { x: L - 4, y: y + 4, "text-anchor": "end", class: "cc-tick" }, t.label));
    }
    bars.forEach((b, i) => {
      const y0 = T + ph - ((Math.max(0, b.value) - min) / span) * ph;
      const hgt = (Math.abs(b.value) / span) * ph;
      svg.append(s("rect", { x: L + i * bw + 0.5, y: y0, width: Math.max(1, bw - 1), height: hgt, fill: b.color, class: "cc-bar", "data-label": b.label, "data-value": b.value }));
    });
    if (range && range[1] > range[0]) {
      const [lo, hi] = range;
      for (const t of linearTicks(lo, hi, Math.max(2, Math.floor(pw / 70)))) {
        if (t.value < lo || t.value > hi) continue;
        const x = L + ((t.value - lo) / (hi - lo)) * pw;
        svg.append(s("line", { x1: x, x2: x, y1: T + ph, y2: T + ph + 4, stroke: "#c3cad5" }), s("text", { x, y: height - B + 14, "text-anchor": "middle", class: "cc-tick cc-xtick", "data-value": t.value }, t.label));
      }
    } else {
      const step = Math.ceil(bars.length / Math.max(1, Math.floor(pw / 50)));
      bars.forEach((b, i) => {
        if (i % step === 0) svg.append(s("text", { x: L + i * bw + bw / 2, y: height - B + 14, "text-anchor": "middle", class: "cc-tick" }, b.label));
      });
    }
    svg.append(s("text", { x: L + pw / 2, y: height - 4, "text-anchor": "middle", class: "cc-axis cc-xtitle" }, xTitle));
    return svg;
  }
  const L = Math.min(160, Math.max(50, ...bars.map((b) => b.label.length * 6.5)));
  const rowH = Math.max(12, Math.min(26, (height - 24) / Math.max(1, bars.length)));
  svg.append(s("text", { x: L + (width - L - 56) / 2, y: Math.min(height - 4, 4 + bars.length * rowH + 16), "text-anchor": "middle", class: "cc-axis cc-xtitle" }, xTitle));
  const pw = width - L - 56;
  bars.forEach((b, i) => {
    const y = 4 + i * rowH;
    const x0 = L + ((Math.min(0, b.value) - min) / span) * pw;
    const w = (Math.abs(b.value) / span) * pw;
    svg.append(
      s("text", { x: L - 4, y: y + rowH / 2 + 4, "text-anchor": "end", class: "cc-tick" }, b.label),
      s("rect", { x: x0, y: y + 1, width: Math.max(1, w), height: rowH - 3, fill: b.color, class: "cc-bar", "data-label": b.label, "data-value": b.value }),
      s("text", { x: x0 + w + 4, y: y + rowH / 2 + 4, class: "cc-tick" }, fmtNumber(b.value)),
    );
  });
  return svg;
}

function confusionSvg(actual: string[], predicted: string[], counts: Map<string, number>, width: number, height: number, xTitle: string, yTitle: string): SVGSVGElement {
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "cc-svg" });
  const L = Math.min(110, Math.max(40, ...actual.map((a) => a.length * 6.5))) + 16;
  const T = 6;
  const B = 34;
  const cw = (width - L - 8) / Math.max(1, predicted.length);
  const ch = (height - T - B) / Math.max(1, actual.length);
  const max = Math.max(1, ...counts.values());
  actual.forEach((a, i) => {
    svg.append(s("text", { x: L - 4, y: T + i * ch + ch / 2 + 4, "text-anchor": "end", class: "cc-tick" }, a));
    predicted.forEach((p, j) => {
      const n = counts.get(`${a}\u0000${p}`) ?? 0;
      const f = n / max;
      svg.append(s("rect", { x: L + j * cw, y: T + i * ch, width: cw - 1, height: ch - 1, fill: `rgba(31,119,180,${(0.06 + 0.94 * f).toFixed(3)})`, class: "cc-cell", "data-actual": a, "data-predicted": p, "data-count": n }));
      if (cw > 22 && ch > 14) svg.append(s("text", { x: L + j * cw + cw / 2, y: T + i * ch + ch / 2 + 4, "text-anchor": "middle", class: "cc-count", fill: f > 0.55 ? "#fff" : "#1d2430" }, fmtNumber(n)));
    });
  });
  predicted.forEach((p, j) => svg.append(s("text", { x: L + j * cw + cw / 2, y: height - B + 14, "text-anchor": "middle", class: "cc-tick" }, p)));
  svg.append(s("text", { x: L + (width - L) / 2, y: height - 4, "text-anchor": "middle", class: "cc-axis cc-xtitle" }, xTitle), s("text", { x: 10, y: T + (height - T - B) / 2, transform: `rotate(-90 10 ${T + (height - T - B) / 2})`, "text-anchor": "middle", class: "cc-axis cc-ytitle" }, yTitle));
  return svg;
}

/** The first of `titles` that is a non-empty string. */
function firstTitle(...titles: (string | undefined)[]): string {
  return titles.find((t) => typeof t === "string" && t.trim() !== "") ?? "";
}

/** The axis titles of a chart, as W&B's presets draw them: the `x-axis-title` /
 * `y-axis-title` string settings where the chart has them (ROC and PR curves), else the names of
 * the table columns that play the x and y roles (`fieldSettings`). */
export function axisTitles(kind: string, chart: ChartSpec): { x: string; y: string } {
  const f = chart.fields;
  const st = chart.strings;
  const given = (axis: "x" | "y", ...fallback: (string | undefined)[]) => firstTitle(st[`${axis}-axis-title`], ...fallback);
  switch (kind) {
    case "lineseries":
      return { x: given("x", st.xname, "x"), y: given("y", "y") };
    case "bar": // horizontal bars: the labels down the y axis, the values along x
      return { x: given("x", f.value, "value"), y: given("y", f.label, "label") };
    case "histogram":
      return { x: given("x", f.value, "value"), y: given("y", "Count") };
    case "confusion_matrix":
      return { x: given("x", f.Predicted, "Predicted"), y: given("y", f.Actual, "Actual") };
    default:
      return { x: given("x", f.x, "x"), y: given("y", f.y, "y") };
  }
}

/** A chart with its y-axis title written up its left side. */
function withYTitle(chart: Element, title: string): HTMLElement {
  const label = h("div.cc-ytitle", { style: "writing-mode: vertical-rl; transform: rotate(180deg); text-align: center; font-size: 11px; font-weight: 600; color: #1d2430; padding: 0 2px; flex: none" }, title);
  const body = h("div.cc-chart", { style: "flex: 1; min-width: 0" });
  body.append(chart);
  return h("div.cc-frame", { style: "display: flex; align-items: stretch" }, label, body);
}

class CustomChartPanel implements PanelInstance {
  readonly el: HTMLElement;
  private body: HTMLElement;
  private head: HTMLElement;
  private gen = 0;
  private dispose: (() => void)[] = [];
  private fallback: PanelInstance | null = null;

  constructor(
    private ctx: PanelContext,
    private spec: PanelSpec,
  ) {
    this.head = h("div.cc-head.muted");
    this.body = h("div.cc-body");
    this.el = h("div.cc-panel", { "data-media": "custom-chart" }, this.head, this.body);
  }

  private clear(): void {
    this.dispose.forEach((f) => f());
    this.dispose = [];
  }

  async update(): Promise<void> {
    const gen = ++this.gen;
    const key = String(this.spec.config.key ?? "");
    const runs = this.ctx.runs().slice(0, MAX_RUNS).filter((r) => mediaKind(r.run.summary[key]) === "table");
    const withSpec = runs.map((r) => ({ r, spec: chartSpec(r.run, key) })).filter((x): x is { r: ShownRun; spec: ChartSpec } => x.spec !== null);
    if (!withSpec.length) {
      this.body.replaceChildren(h("p.muted", null, `No visible run logged the chart of ${key}.`));
      return;
    }
    const chart = withSpec[0].spec;
    const tables = await Promise.all(withSpec.map(async ({ r }) => ({ r, t: await fileJson<TableFile>(this.ctx.entity, this.ctx.project, r.run.run_id, String(asDoc(r.run.summary[key])!.path)) })));
    if (gen !== this.gen) return;
    this.clear();
    const kind = chart.panelDefId.replace(/^wandb\//, "").replace(/\/v\d+$/, "");
    this.el.dataset.chart = kind;
    this.el.dataset.chartKey = chart.chart;
    this.head.textContent = [chart.strings.title, kind].filter(Boolean).join(" · ");
    const width = Math.max(200, this.el.clientWidth || 400);
    const height = Math.max(120, this.spec.h - 30);
    const multi = tables.length > 1;
    const col = (t: TableFile, role: string): number => t.columns.indexOf(chart.fields[role] ?? role);
    const titles = axisTitles(kind, chart);
    const xTitle = titles.x;
    const yTitle = titles.y;
    this.el.dataset.xTitle = xTitle;
    this.el.dataset.yTitle = yTitle;

    if (kind === "line" || kind === "lineseries" || kind === "area-under-curve") {
      const [xr, yr, gr] = kind === "lineseries" ? ["step", "lineVal", "lineKey"] : kind === "line" ? ["x", "y", "stroke"] : ["x", "y", "class"];
      const series: PlotSeries[] = [];
      let k = 0;
      for (const { r, t } of tables) {
        const xi = col(t, xr);
        const yi = col(t, yr);
        const gi = chart.fields[gr] ? col(t, gr) : -1;
        const groups = new Map<string, [number, number][]>();
        for (const row of t.data) {
          const g = gi >= 0 ? String(row[gi]) : "";
          if (!groups.has(g)) groups.set(g, []);
          groups.get(g)!.push([num(row[xi]), num(row[yi])]);
        }
        for (const [g, pts] of groups) {
          pts.sort((a, b) => a[0] - b[0]);
          const label = [multi ? r.run.name : "", g].filter(Boolean).join(" · ") || yTitle;
          series.push({ id: `${r.run.run_id}:${g}`, label, color: multi && groups.size === 1 ? r.color : colorAt(k++), xs: pts.map((p) => p[0]), ys: pts.map((p) => p[1]) });
        }
      }
      const plot = new Plot(series, { height, xLabel: xTitle, xKind: "number", yName: yTitle, legend: series.length > 1 ? "top" : "off" });
      this.dispose.push(() => plot.destroy());
      this.body.replaceChildren(withYTitle(plot.el, yTitle));
      this.el.dataset.series = String(series.length);
    } else if (kind === "scatter") {
      const points: ScatterPoint[] = [];
      for (const { r, t } of tables) {
        const xi = col(t, "x");
        const yi = col(t, "y");
        for (const row of t.data) points.push({ x: num(row[xi]), y: num(row[yi]), label: r.run.name, color: r.color, id: r.run.run_id });
      }
      const sc = new Scatter(points, xTitle, yTitle);
      sc.setHeight(height);
      this.dispose.push(() => sc.destroy());
      this.body.replaceChildren(withYTitle(sc.el, yTitle));
      this.el.dataset.points = String(points.length);
    } else if (kind === "bar") {
      const bars = tables.flatMap(({ r, t }) => {
        const li = col(t, "label");
        const vi = col(t, "value");
        return t.data.map((row, i) => ({ label: `${multi ? r.run.name + " · " : ""}${String(row[li])}`, value: num(row[vi]), color: multi ? r.color : colorAt(i) }));
      });
      const rowH = Math.max(12, Math.min(26, (Math.max(height, bars.length * 14 + 24) - 24) / Math.max(1, bars.length)));
      this.body.replaceChildren(withYTitle(barsSvg(bars, width - 18, Math.max(Math.min(height, bars.length * rowH + 28), bars.length * 14 + 24), false, xTitle), yTitle));
      this.el.dataset.bars = String(bars.length);
    } else if (kind === "histogram") {
      const values = tables.flatMap(({ t }) => t.data.map((row) => num(row[col(t, "value")])).filter(Number.isFinite));
      const lo = Math.min(...values);
      const hi = Math.max(...values);
      const n = Math.max(1, Math.min(30, Math.ceil(Math.sqrt(values.length))));
      const counts = new Array(n).fill(0);
      for (const v of values) counts[Math.min(n - 1, Math.floor(((v - lo) / (hi - lo || 1)) * n))]++;
      const bars = counts.map((c, i) => ({ label: fmtNumber(lo + ((hi - lo) * i) / n), value: c, color: tables.length === 1 ? tables[0].r.color : "#1f77b4" }));
      this.body.replaceChildren(withYTitle(barsSvg(bars, width - 18, height, true, xTitle, [lo, hi]), yTitle));
      this.el.dataset.values = String(values.length);
      this.el.dataset.bins = String(n);
    } else if (kind === "confusion_matrix") {
      const counts = new Map<string, number>();
      const actual: string[] = [];
      const predicted: string[] = [];
      for (const { t } of tables) {
        const ai = col(t, "Actual");
        const pi = col(t, "Predicted");
        const ni = col(t, "nPredictions");
        for (const row of t.data) {
          const a = String(row[ai]);
          const p = String(row[pi]);
          if (!actual.includes(a)) actual.push(a);
          if (!predicted.includes(p)) predicted.push(p);
          counts.set(`${a}\u0000${p}`, (counts.get(`${a}\u0000${p}`) ?? 0) + (num(row[ni]) || 0));
        }
      }
      this.body.replaceChildren(confusionSvg(actual, predicted, counts, width, height, xTitle, yTitle));
      this.el.dataset.classes = String(actual.length);
    } else {
      // a Vega spec of the user's own: its table
      this.fallback ??= tablePanel.create(this.ctx, this.spec);
      this.body.replaceChildren(this.fallback.el);
      await this.fallback.update("runs");
    }
    this.el.classList.add("drawn");
  }

  destroy(): void {
    this.gen++;
    this.clear();
    this.fallback?.destroy();
  }
}

export const customChartPanel: PanelKind = {
  kind: "custom-chart",
  label: "Custom chart (runyard.plot / wandb.plot)",
  pick: "metric",
  defaults(_ctx: PanelContext, first?: string): Doc {
    return { key: first ?? "" };
  },
  title(spec: PanelSpec): string {
    return String(spec.config.chart || spec.config.key || "Custom chart");
  },
  settings(ctx: PanelContext): SettingField[] {
    return [{ name: "key", label: "Table key (<chart>_table)", type: "select", options: ctx.metrics().map((m) => [m, m]) }];
  },
  create(ctx: PanelContext, spec: PanelSpec): PanelInstance {
    return new CustomChartPanel(ctx, spec);
  },
  auto(metric: string, sample: Json | undefined, run?: Run): Doc | null {
    if (mediaKind(sample) !== "table") return null;
    const spec = chartSpec(run, metric);
    return spec ? { key: metric, chart: spec.chart } : null;
  },
};
