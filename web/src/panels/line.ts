// Line panels: one metric of every visible run (or each group's mean with a band) against the
// step, relative or wall time, another metric, or each run's own step metric
// (define_metric(..., step_metric=...)). Series come from the workspace's batched cache;
// live updates redraw from it without a fetch.

import type { Doc, Json, Run } from "../api";
import { aggregate, LineChart, type LineOptions, type LineSeries } from "../charts/line";
import type { XKind } from "../charts/plot";
import { h } from "../util";
import type { Points } from "../workspace/series";
import type { PanelContext, PanelInstance, PanelKind, PanelSpec, SettingField, ShownRun, UpdateReason } from "./types";

/** Drawing costs, read by bench/ui_load.py (window.runyardPerf). */
export const perf = { draws: 0, drawMs: 0, lastDrawMs: 0 };
(window as unknown as { runyardPerf?: typeof perf }).runyardPerf = perf;

/** Points of one run's series in a chart of `n` runs: about 60,000 points per chart. */
export function samplesFor(n: number): number {
  return Math.max(80, Math.min(1000, Math.floor(60_000 / Math.max(1, n))));
}

function globMatch(pattern: string, key: string): boolean {
  if (!pattern.includes("*")) return pattern === key;
  const re = new RegExp("^" + pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$");
  return re.test(key);
}

/** The step metric a run defined for `key` (define_metric; exact names before globs). */
export function stepMetricOf(run: Run, key: string): string | null {
  const defs = run.metric_defs ?? [];
  const exact = defs.find((d) => d.name === key && d.step_metric);
  if (exact) return exact.step_metric;
  const glob = defs.find((d) => d.name.includes("*") && d.step_metric && globMatch(d.name, key) && d.step_metric !== key);
  return glob ? glob.step_metric : null;
}

export function xKindOf(x: string): XKind {
  return x === "_step" ? "step" : x === "_runtime" ? "duration" : x === "_timestamp" ? "time" : "number";
}

export function xLabelOf(x: string): string {
  return x === "_step" ? "step" : x === "_runtime" ? "relative time" : x === "_timestamp" ? "wall time" : x === "step_metric" ? "step metric" : x;
}

function str(config: Doc, name: string, fallback: string): string {
  const v = config[name];
  return typeof v === "string" && v ? v : fallback;
}

function bool(config: Doc, name: string): boolean {
  return config[name] === true;
}

export class LinePanel implements PanelInstance {
  readonly el: HTMLElement;
  private chart: LineChart | null = null;
  private generation = 0;
  private status: HTMLElement;
  private data = new Map<string, Points>();
  private xs: string[] = [];
  /** the last draw of runs (not groups): its runs, its series and where each run's is */
  private drawn: { shown: ShownRun[]; series: LineSeries[]; index: Map<string, number>; lastStep: number } | null = null;

  constructor(
    private ctx: PanelContext,
    private spec: PanelSpec,
  ) {
    this.status = h("p.muted.panel-status", null, "Loading…");
    this.el = h("div.line-panel", null, this.status);
  }

  private key(): string {
    return str(this.spec.config, "key", "");
  }

  /** The x axis chosen for the panel (its own, else the workspace's). */
  private xChoice(): string {
    return str(this.spec.config, "x", this.ctx.settings().x || "_step");
  }

  private xFor(run: Run): string {
    const x = this.xChoice();
    if (x !== "step_metric") return x;
    return stepMetricOf(run, this.key()) ?? "_step";
  }

  private options(xs: string[]): LineOptions {
    const c = this.spec.config;
    const smoothing = typeof c.smoothing === "number" ? c.smoothing : this.ctx.settings().smoothing;
    const x = xs.length === 1 ? xs[0] : this.xChoice();
    const label = this.xChoice() === "step_metric" && xs.length === 1 ? (xs[0] === "_step" ? "step" : xs[0]) : xLabelOf(x);
    return {
      xLabel: label,
      xKind: xs.length === 1 ? xKindOf(xs[0]) : "number",
      logX: bool(c, "logX"),
      logY: bool(c, "logY"),
      smoothing,
      height: this.spec.h,
      legend: (str(c, "legend", "off") as LineOptions["legend"]) ?? "off",
      clipOutliers: bool(c, "clip"),
      yName: this.key(),
      growing: this.ctx.runs().some((r) => r.run.state === "running"),
    };
  }

  async update(_reason: UpdateReason): Promise<void> {
    const gen = ++this.generation;
    const key = this.key();
    const shown = this.ctx.runs();
    if (!key) {
      this.status.textContent = "No metric chosen: open the panel's settings.";
      return;
    }
    const byX = new Map<string, ShownRun[]>();
    for (const r of shown) {
      const x = this.xFor(r.run);
      if (!byX.has(x)) byX.set(x, []);
      byX.get(x)!.push(r);
    }
    const samples = samplesFor(shown.length);
    const data = new Map<string, Points>();
    let done = false; // this update's own series arrived (an early draw is then stale)
    // runs shown before at another resolution (a filter or an eye changed how many runs are
    // visible): draw what is cached at once, then again at this resolution
    if ([...byX].some(([x, runs]) => runs.some((r) => !this.ctx.series.peek(key, x, samples)?.has(r.run.run_id)))) {
      const drawEarly = (): boolean => {
        const early = new Map<string, Points>();
        const all = [...byX].every(([x, runs]) => {
          const got = this.ctx.series.peekAny(key, x, runs.map((r) => r.run.run_id), samples);
          got?.forEach((p, id) => early.set(id, p));
          return !!got;
        });
        if (all) this.draw(shown, early, this.xs);
        return all;
      };
      if (!drawEarly()) {
        // some runs' series are still on their way at another resolution (the panel was
        // mounted just before a filter change): draw when those arrive, if this update's own
        // request has not answered by then
        const waits = [...byX].map(([x, runs]) => this.ctx.series.pendingAny(key, x, runs.map((r) => r.run.run_id)));
        if (waits.every((w) => w !== null)) {
          void Promise.all(waits)
            .then(() => {
              if (gen === this.generation && !done) drawEarly();
            })
            .catch(() => undefined);
        }
      }
    }
    try {
      await Promise.all(
        [...byX].map(async ([x, runs]) => {
          const got = await this.ctx.series.get(key, x, runs.map((r) => r.run.run_id), samples);
          for (const r of runs) {
            const p = got.get(r.run.run_id);
            if (p) data.set(r.run.run_id, p);
          }
        }),
      );
    } catch (err) {
      done = true;
      if (gen === this.generation) this.status.textContent = err instanceof Error ? err.message : String(err);
      return;
    }
    done = true;
    if (gen !== this.generation) return;
    this.data = data;
    // the x axes of the runs that have the metric (a run without it says nothing of the axis)
    this.xs = [...byX].filter(([, rs]) => rs.some((r) => (data.get(r.run.run_id)?.xs.length ?? 0) > 0)).map(([x]) => x);
    if (!this.xs.length) this.xs = [...byX.keys()].slice(0, 1);
    this.draw(shown, data, this.xs);
  }

  /** The points drawn for a run (the run page reads the last value from them). */
  points(runId: string): Points | undefined {
    return this.data.get(runId);
  }

  /** The x axes of the last draw (one per distinct step metric). */
  xAxes(): string[] {
    return this.xs;
  }

  private draw(shown: ShownRun[], data: Map<string, Points>, xs: string[], extend = false): void {
    const series: LineSeries[] = [];
    const groups = this.ctx.groups();
    const band = str(this.spec.config, "band", "minmax");
    if (groups) {
      for (const g of groups) {
        const members = g.runs.map((r) => data.get(r.run.run_id)).filter((p): p is Points => !!p && p.xs.length > 0);
        if (!members.length) continue;
        const agg = aggregate(members.map((p) => ({ xs: p.xs, ys: p.ys })));
        if (!agg.xs.length) continue;
        const lo = band === "std" ? agg.mean.map((m, i) => m - agg.std[i]) : band === "minmax" ? agg.lo : undefined;
        const hi = band === "std" ? agg.mean.map((m, i) => m + agg.std[i]) : band === "minmax" ? agg.hi : undefined;
        series.push({ id: `group:${g.key}`, label: `${g.label} (${g.runs.length})`, color: g.color, xs: agg.xs, ys: agg.mean, lo, hi });
      }
    } else {
      for (const r of shown) {
        const p = data.get(r.run.run_id);
        if (!p || !p.xs.length) continue;
        series.push({ id: r.run.run_id, label: r.run.name, color: r.color, xs: p.xs, ys: p.ys, steps: p.steps });
      }
    }
    this.el.dataset.series = String(series.length);
    this.el.dataset.points = String(series.reduce((n, s) => n + s.xs.length, 0));
    // the latest step drawn (tests compare it with the run's last logged step)
    let lastStep = -Infinity;
    for (const r of shown) {
      const p = data.get(r.run.run_id);
      if (p && p.steps.length) lastStep = Math.max(lastStep, p.steps[p.steps.length - 1]);
    }
    if (Number.isFinite(lastStep)) this.el.dataset.lastStep = String(lastStep);
    else delete this.el.dataset.lastStep;
    this.drawn = groups || !series.length ? null : { shown, series, index: new Map(series.map((s, k) => [s.id!, k])), lastStep };
    if (!series.length) {
      this.chart?.destroy();
      this.chart = null;
      this.el.replaceChildren(this.status);
      this.status.textContent = shown.length ? `No values of ${this.key()} for this x axis.` : "No visible runs.";
      this.el.classList.remove("drawn");
      return;
    }
    const opts = this.options(xs);
    const t0 = performance.now();
    if (!this.chart) {
      this.chart = new LineChart(series, opts);
      this.el.replaceChildren(this.chart.el);
    }
    if (extend) this.chart.extend(series, opts);
    else this.chart.update(series, opts);
    this.el.classList.add("drawn");
    perf.lastDrawMs = performance.now() - t0;
    perf.drawMs += perf.lastDrawMs;
    perf.draws++;
  }

  live(changed: Set<string>): void {
    if (!changed.has(this.key())) return;
    const shown = this.ctx.runs();
    const samples = samplesFor(shown.length);
    if (this.liveSome(shown, samples)) return;
    // the cached series grew in place: when every run's points are still cached, draw the new
    // ones onto the chart; else (a run to read again) update
    const data = new Map<string, Points>();
    for (const r of shown) {
      const p = this.ctx.series.peek(this.key(), this.xFor(r.run), samples)?.get(r.run.run_id);
      if (!p) {
        void this.update("runs");
        return;
      }
      data.set(r.run.run_id, p);
    }
    this.data = data;
    this.draw(shown, data, this.xs, !this.ctx.groups());
  }

  /** The live update when the runs shown are those of the last draw: only the series of the
   * runs that grew are read and drawn on (O(runs that log), not O(runs shown)). False when it
   * does not apply (groups, another set of runs, a run not drawn yet or not cached). */
  private liveSome(shown: ShownRun[], samples: number): boolean {
    const grown = this.ctx.series.grown(this.key());
    const last = this.drawn;
    if (!grown || !this.chart || !last || this.ctx.groups() || !sameRuns(last.shown, shown)) return false;
    const shownById = byRunId(shown);
    const byId = new Map<string, ShownRun>();
    for (const id of grown) {
      const r = shownById.get(id);
      if (!r) continue; // not shown here
      if (!last.index.has(id)) return false; // shown, not drawn yet
      byId.set(id, r);
    }
    const series = last.series.slice();
    const updates: LineSeries[] = [];
    const points: [string, Points][] = [];
    let lastStep = last.lastStep;
    for (const [id, r] of byId) {
      const p = this.ctx.series.peek(this.key(), this.xFor(r.run), samples)?.get(id);
      if (!p || !p.xs.length) return false;
      const k = last.index.get(id)!;
      const s: LineSeries = { id, label: r.run.name, color: r.color, xs: p.xs, ys: p.ys, steps: p.steps };
      series[k] = s;
      updates.push(s);
      points.push([id, p]);
      if (p.steps.length) lastStep = Math.max(lastStep, p.steps[p.steps.length - 1]);
    }
    const t0 = performance.now();
    if (!this.chart.extendSome(series, updates, this.options(this.xs))) return false;
    for (const [id, p] of points) this.data.set(id, p);
    this.drawn = { shown, series, index: last.index, lastStep };
    let n = 0;
    for (const s of series) n += s.xs.length;
    this.el.dataset.points = String(n);
    if (Number.isFinite(lastStep)) this.el.dataset.lastStep = String(lastStep);
    perf.lastDrawMs = performance.now() - t0;
    perf.drawMs += perf.lastDrawMs;
    perf.draws++;
    return true;
  }

  destroy(): void {
    this.generation++;
    this.chart?.destroy();
  }
}

/** The runs by id, once per list of runs (every panel of a live update gets the same list). */
const byIdCache = new WeakMap<ShownRun[], Map<string, ShownRun>>();
function byRunId(shown: ShownRun[]): Map<string, ShownRun> {
  let m = byIdCache.get(shown);
  if (!m) byIdCache.set(shown, (m = new Map(shown.map((r) => [r.run.run_id, r]))));
  return m;
}

/** The same runs in the same order with the same names and colours. */
function sameRuns(a: ShownRun[], b: ShownRun[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.run.run_id !== y.run.run_id || x.color !== y.color || x.run.name !== y.run.name) return false;
  }
  return true;
}

function xOptions(ctx: PanelContext): [string, string][] {
  return [
    ["", `Workspace default (${xLabelOf(ctx.settings().x || "_step")})`],
    ["_step", "Step"],
    ["step_metric", "The run's step metric (define_metric)"],
    ["_runtime", "Relative time"],
    ["_timestamp", "Wall time"],
    ...ctx.metrics().filter((m) => !m.startsWith("_")).map((m): [string, string] => [m, m]),
  ];
}

export const linePanel: PanelKind = {
  kind: "line",
  label: "Line plot",
  pick: "metric",
  defaults(_ctx: PanelContext, first?: string): Doc {
    return { key: first ?? "" };
  },
  title(spec: PanelSpec): string {
    return str(spec.config, "key", "Line plot");
  },
  settings(ctx: PanelContext): SettingField[] {
    return [
      { name: "key", label: "Metric", type: "select", options: ctx.metrics().filter((m) => !m.startsWith("_")).map((m) => [m, m]) },
      { name: "x", label: "X axis", type: "select", options: xOptions(ctx) },
      { name: "smoothing", label: "Smoothing (empty: the workspace's)", type: "number", min: 0, max: 0.99, step: 0.01 },
      { name: "logX", label: "Log x", type: "checkbox" },
      { name: "logY", label: "Log y", type: "checkbox" },
      { name: "band", label: "Band of a group", type: "select", options: [["minmax", "min–max"], ["std", "mean ± std"], ["none", "none"]] },
      { name: "legend", label: "Legend", type: "select", options: [["off", "off"], ["top", "top"], ["bottom", "bottom"], ["right", "right"]] },
      { name: "clip", label: "Ignore outliers (y from the 5th to the 95th percentile)", type: "checkbox" },
    ];
  },
  create(ctx: PanelContext, spec: PanelSpec): PanelInstance {
    return new LinePanel(ctx, spec);
  },
  auto(metric: string, sample: Json | undefined): Doc | null {
    if (metric.startsWith("_")) return null;
    // numbers (and define_metric aggregates {min, max, last, ...}) make line plots
    if (sample === undefined || sample === null || typeof sample === "number" || typeof sample === "boolean") return { key: metric };
    if (typeof sample === "object" && !Array.isArray(sample) && !("_type" in sample)) return { key: metric };
    return null;
  },
};
