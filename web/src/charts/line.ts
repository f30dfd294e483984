// Line charts on uPlot: several series with their own x values (aligned with uPlot.join),
// EMA smoothing with the raw line faint behind, log scale, mean with a min–max band for
// grouped runs, and a hover readout of every series' value at the cursor.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { fmtNumber, fmtTick, h } from "../util";

export interface LineSeries {
  label: string;
  color: string;
  xs: ArrayLike<number>;
  ys: ArrayLike<number>;
  /** min and max of a group at each x (drawn as a band behind the line) */
  lo?: ArrayLike<number>;
  hi?: ArrayLike<number>;
}

export interface LineOptions {
  title?: string;
  xLabel?: string;
  /** x values are unix seconds (wall time) */
  xTime?: boolean;
  logY?: boolean;
  /** EMA weight in [0, 1): 0 is off */
  smoothing?: number;
  height?: number;
}

/** W&B-style debiased exponential moving average; NaN and gaps are skipped. */
export function ema(ys: ArrayLike<number | null>, weight: number): (number | null)[] {
  const out: (number | null)[] = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || y === undefined || !Number.isFinite(y)) {
      out[i] = null;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

function fade(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) return color;
  return `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${alpha})`;
}

function cleanLog(ys: ArrayLike<number | null>, log: boolean): (number | null)[] {
  const out: (number | null)[] = new Array(ys.length);
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    out[i] = y === null || y === undefined || !Number.isFinite(y) || (log && y <= 0) ? null : y;
  }
  return out;
}

interface Role {
  label: string;
  color: string;
  kind: "raw" | "main" | "lo" | "hi";
}

export class LineChart {
  readonly el: HTMLElement;
  private plot: uPlot | null = null;
  private readout: HTMLElement;
  private body: HTMLElement;
  private observer: ResizeObserver;
  private roles: Role[] = [];

  constructor(private series: LineSeries[], private opts: LineOptions = {}) {
    this.body = h("div.chart-body");
    this.readout = h("div.readout", { "aria-live": "off" });
    this.el = h("div.chart", null, this.body, this.readout);
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(this.el);
  }

  update(series: LineSeries[], opts: LineOptions): void {
    this.series = series;
    this.opts = opts;
    this.draw();
  }

  private width(): number {
    return Math.max(200, Math.floor(this.el.clientWidth || 400));
  }

  private resize(): void {
    if (!this.plot) {
      if (this.el.isConnected && this.el.clientWidth > 0) this.draw();
      return;
    }
    const w = this.width();
    if (Math.abs(this.plot.width - w) > 2) this.plot.setSize({ width: w, height: this.opts.height ?? 220 });
  }

  draw(): void {
    if (!this.el.isConnected || this.el.clientWidth === 0) return; // drawn by the resize observer
    this.plot?.destroy();
    this.plot = null;
    const log = !!this.opts.logY;
    const smoothing = this.opts.smoothing ?? 0;
    const tables: uPlot.AlignedData[] = [];
    const roles: Role[] = [];
    const bands: uPlot.Band[] = [];
    for (const s of this.series) {
      const xs = Float64Array.from(s.xs as ArrayLike<number>);
      const ys = cleanLog(s.ys, log);
      const cols: (ArrayLike<number | null>)[] = [];
      const hasBand = !!(s.lo && s.hi);
      if (hasBand) {
        cols.push(cleanLog(s.hi!, log), cleanLog(s.lo!, log));
        roles.push({ label: s.label, color: s.color, kind: "hi" }, { label: s.label, color: s.color, kind: "lo" });
      }
      if (smoothing > 0) {
        cols.push(ys, ema(ys, smoothing));
        roles.push({ label: s.label, color: s.color, kind: "raw" }, { label: s.label, color: s.color, kind: "main" });
      } else {
        cols.push(ys);
        roles.push({ label: s.label, color: s.color, kind: "main" });
      }
      tables.push([xs, ...cols] as unknown as uPlot.AlignedData);
    }
    const data: uPlot.AlignedData = tables.length === 1 ? tables[0] : uPlot.join(tables);
    roles.forEach((r, i) => {
      if (r.kind === "hi") bands.push({ series: [i + 1, i + 2], fill: fade(r.color, 0.15) });
    });
    this.roles = roles;
    const seriesOpts: uPlot.Series[] = [
      { label: this.opts.xLabel ?? "step" },
      ...roles.map((r): uPlot.Series => ({
        label: r.kind === "main" ? r.label : `${r.label} (${r.kind})`,
        stroke: r.kind === "main" ? r.color : r.kind === "raw" ? fade(r.color, 0.25) : fade(r.color, 0.0),
        width: r.kind === "main" ? 1.5 : 1,
        spanGaps: true,
        points: { show: false },
      })),
    ];
    const opts: uPlot.Options = {
      width: this.width(),
      height: this.opts.height ?? 220,
      legend: { show: false },
      cursor: { drag: { x: true, y: false }, points: { size: 6 } },
      scales: {
        x: { time: !!this.opts.xTime },
        y: log ? { distr: 3 } : {},
      },
      axes: [
        {
          stroke: "#555",
          grid: { stroke: "#eee" },
          ticks: { stroke: "#ddd" },
          label: this.opts.xLabel,
          labelSize: 18,
          size: 36,
          // uPlot's default keeps 3 decimals: close ticks (relative time in ms) all read 0.003.
          ...(this.opts.xTime ? {} : { values: (_u: uPlot, vals: number[], _ax: number, _space: number, incr: number) => vals.map((v) => (v === null ? "" : fmtTick(v, incr))) }),
        },
        {
          stroke: "#555",
          grid: { stroke: "#eee" },
          ticks: { stroke: "#ddd" },
          size: 56,
          values: (_u, vals, _ax, _space, incr) => vals.map((v) => (v === null ? "" : log ? fmtNumber(v) : fmtTick(v, incr))),
        },
      ],
      series: seriesOpts,
      bands,
      hooks: { setCursor: [(u) => this.showReadout(u)] },
    };
    this.plot = new uPlot(opts, data, this.body);
    this.showReadout(this.plot);
  }

  private showReadout(u: uPlot): void {
    const idx = u.cursor.idx;
    const parts: HTMLElement[] = [];
    const xs = u.data[0];
    const at = idx === null || idx === undefined ? null : idx;
    if (at !== null) {
      const x = xs[at];
      const xText = this.opts.xTime ? new Date(x * 1000).toLocaleString() : fmtNumber(x);
      parts.push(h("span.x", null, `${this.opts.xLabel ?? "step"} ${xText}`));
    }
    this.roles.forEach((r, i) => {
      if (r.kind !== "main") return;
      const col = u.data[i + 1];
      let v: number | null | undefined = null;
      if (at !== null) v = col[at];
      else {
        for (let j = col.length - 1; j >= 0; j--) if (col[j] !== null && col[j] !== undefined) { v = col[j]; break; }
      }
      parts.push(
        h("span.item", null, h("i.swatch", { style: `background:${r.color}` }), `${r.label}: `, h("b", null, v === null || v === undefined ? "–" : fmtNumber(v))),
      );
    });
    this.readout.replaceChildren(...parts);
  }

  destroy(): void {
    this.observer.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}

/** Mean, min and max of several series on a shared x grid (runs of a group). Each run is
 * binned onto `bins` equal-width buckets of x and averaged per bucket. */
export function aggregate(series: { xs: ArrayLike<number>; ys: ArrayLike<number> }[], bins = 400): { xs: number[]; mean: number[]; lo: number[]; hi: number[] } {
  let xmin = Infinity;
  let xmax = -Infinity;
  for (const s of series) for (let i = 0; i < s.xs.length; i++) {
    if (s.xs[i] < xmin) xmin = s.xs[i];
    if (s.xs[i] > xmax) xmax = s.xs[i];
  }
  if (!Number.isFinite(xmin)) return { xs: [], mean: [], lo: [], hi: [] };
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
  const xs: number[] = [], mean: number[] = [], lo: number[] = [], hi: number[] = [];
  for (let b = 0; b < nb; b++) {
    let total = 0, n = 0, mn = Infinity, mx = -Infinity;
    for (const r of perRun) {
      if (!r.cnt[b]) continue;
      const v = r.sum[b] / r.cnt[b];
      total += v;
      n++;
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
    }
    if (!n) continue;
    xs.push(nb === 1 ? xmin : xmin + (b + 0.5) * width);
    mean.push(total / n);
    lo.push(mn);
    hi.push(mx);
  }
  return { xs, mean, lo, hi };
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
