// Line charts: several series with their own x values, EMA smoothing with the raw line faint
// behind, log scales, a band (group min-max or ±std) behind a group's mean, and a hover
// readout of every series' value at its nearest point (charts/plot.ts draws them).

import { Plot, type LegendPlace, type PlotSeries, type XKind } from "./plot";

export interface LineSeries {
  label: string;
  color: string;
  xs: ArrayLike<number>;
  ys: ArrayLike<number>;
  /** min and max (or mean ± std) of a group at each x (drawn as a band behind the line) */
  lo?: ArrayLike<number>;
  hi?: ArrayLike<number>;
  /** a stable id (a run id, a group key); the label when absent */
  id?: string;
  steps?: ArrayLike<number>;
}

export interface LineOptions {
  title?: string;
  xLabel?: string;
  /** x values are unix seconds (wall time) */
  xTime?: boolean;
  /** how to tick the x axis (default: step when xLabel is "step", else number) */
  xKind?: XKind;
  logX?: boolean;
  logY?: boolean;
  /** EMA weight in [0, 1): 0 is off */
  smoothing?: number;
  height?: number;
  legend?: LegendPlace;
  clipOutliers?: boolean;
  yName?: string;
  maxReadout?: number;
  growing?: boolean;
}

/** W&B-style debiased exponential moving average; NaN and gaps are skipped. */
export function ema(ys: ArrayLike<number | null>, weight: number): number[] {
  const out: number[] = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || y === undefined || !Number.isFinite(y)) {
      out[i] = NaN;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

/** The plot's series for line series and options (smoothing makes the raw line faint). */
export function toPlotSeries(series: LineSeries[], smoothing: number): PlotSeries[] {
  return series.map((s, i) => {
    const id = s.id ?? `${s.label}#${i}`;
    if (smoothing > 0) return { id, label: s.label, color: s.color, xs: s.xs, ys: ema(s.ys, smoothing), raw: s.ys, lo: s.lo, hi: s.hi, steps: s.steps };
    return { id, label: s.label, color: s.color, xs: s.xs, ys: s.ys, lo: s.lo, hi: s.hi, steps: s.steps };
  });
}

export function plotOptions(opts: LineOptions) {
  const xKind: XKind = opts.xKind ?? (opts.xTime ? "time" : (opts.xLabel ?? "step") === "step" ? "step" : "number");
  return {
    height: opts.height ?? 220,
    xLabel: opts.xLabel ?? "step",
    xKind,
    logX: opts.logX,
    logY: opts.logY,
    clipOutliers: opts.clipOutliers,
    legend: opts.legend ?? "off",
    yName: opts.yName ?? opts.title,
    maxReadout: opts.maxReadout,
    growing: opts.growing,
  };
}

export class LineChart {
  readonly el: HTMLElement;
  private plot: Plot;

  constructor(
    private series: LineSeries[],
    private opts: LineOptions = {},
  ) {
    this.plot = new Plot(toPlotSeries(series, opts.smoothing ?? 0), plotOptions(opts));
    this.el = this.plot.el;
    this.el.classList.add("chart");
  }

  update(series: LineSeries[], opts: LineOptions): void {
    this.series = series;
    this.opts = opts;
    this.draw();
  }

  draw(): void {
    this.plot.set(toPlotSeries(this.series, this.opts.smoothing ?? 0), plotOptions(this.opts));
  }

  /** The same series, longer (live): new segments drawn onto the chart where they fit. */
  extend(series: LineSeries[], opts: LineOptions): void {
    this.series = series;
    this.opts = opts;
    this.plot.extend(toPlotSeries(series, opts.smoothing ?? 0), plotOptions(opts));
  }

  /** `series` (the chart's, in place) of which only `updates` grew: only those are converted
   * and drawn on. False when an update is not on the chart (nothing done: `extend` then). */
  extendSome(series: LineSeries[], updates: LineSeries[], opts: LineOptions): boolean {
    if (updates.some((u) => u.id === undefined)) return false;
    if (!this.plot.extendSome(toPlotSeries(updates, opts.smoothing ?? 0), plotOptions(opts))) return false;
    this.series = series;
    this.opts = opts;
    return true;
  }

  destroy(): void {
    this.plot.destroy();
  }
}

/** Mean, min and max of several series on a shared x grid (runs of a group). Each run is
 * binned onto `bins` equal-width buckets of x and averaged per bucket. */
export function aggregate(series: { xs: ArrayLike<number>; ys: ArrayLike<number> }[], bins = 400): { xs: number[]; mean: number[]; lo: number[]; hi: number[]; std: number[] } {
  let xmin = Infinity;
  let xmax = -Infinity;
  for (const s of series) for (let i = 0; i < s.xs.length; i++) {
    if (s.xs[i] < xmin) xmin = s.xs[i];
    if (s.xs[i] > xmax) xmax = s.xs[i];
  }
  if (!Number.isFinite(xmin)) return { xs: [], mean: [], lo: [], hi: [], std: [] };
  const nb = xmax > xmin ? bins : 1;
  const width = (xmax - xmin) / nb || 1;
  const perRun = series.map((s) => {
    const sum = new Float64Array(nb);
    const cnt = new Float64Array(nb);
    for (let i = 0; i < s.xs.length; i++) {
      const y = s.ys[i];
      if (!Number.isFinite(y)) continue;
      const b = Math.min(nb - 1, Math.floor((s.xs[i] - xmin) / width));
      sum[b] += y;
      cnt[b]++;
    }
    return { sum, cnt };
  });
  const xs: number[] = [], mean: number[] = [], lo: number[] = [], hi: number[] = [], std: number[] = [];
  for (let b = 0; b < nb; b++) {
    let total = 0, sq = 0, n = 0, mn = Infinity, mx = -Infinity;
    for (const r of perRun) {
      if (!r.cnt[b]) continue;
      const v = r.sum[b] / r.cnt[b];
      total += v;
      sq += v * v;
      n++;
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
    }
    if (!n) continue;
    const m = total / n;
    xs.push(nb === 1 ? xmin : xmin + (b + 0.5) * width);
    mean.push(m);
    lo.push(mn);
    hi.push(mx);
    std.push(Math.sqrt(Math.max(0, sq / n - m * m)));
  }
  return { xs, mean, lo, hi, std };
}

/** Points sorted by x with one point per x (the last), as uPlot.join needs. */
export function sortUnique(xs: ArrayLike<number>, ys: ArrayLike<number>): { xs: number[]; ys: number[] } {
  const idx: number[] = [];
  for (let i = 0; i < xs.length; i++) if (Number.isFinite(xs[i])) idx.push(i);
  let sorted = true;
  for (let i = 1; i < idx.length; i++) if (xs[idx[i]] <= xs[idx[i - 1]]) { sorted = false; break; }
  if (!sorted) idx.sort((a, b) => xs[a] - xs[b] || a - b);
  const ox: number[] = [], oy: number[] = [];
  for (const i of idx) {
    if (ox.length && ox[ox.length - 1] === xs[i]) oy[oy.length - 1] = ys[i];
    else { ox.push(xs[i]); oy.push(ys[i]); }
  }
  return { xs: ox, ys: oy };
}
