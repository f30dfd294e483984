// A line plot on two stacked canvases: the data layer (grid, ticks, bands, lines) redrawn when
// the data or the size change, and an overlay (cursor, nearest points, the hovered line, the
// zoom selection) redrawn on every mouse move. Each series has its own x values (no shared
// grid: runs downsampled at different steps stay exact), so the readout shows every series'
// value at its nearest point to the cursor.
//
// Ticks come from charts/ticks.ts (labels equal their values); the labels drawn are also kept
// in data attributes of the element (`data-xticks`, `data-yticks`: JSON [[value, label]...])
// so tests and screen readers can read what the canvas shows.

import { fmtNumber, h } from "../util";
import { durationUnit, linearTicks, logTicks, timeTicks, type Tick } from "./ticks";

export interface PlotSeries {
  id: string;
  label: string;
  color: string;
  /** ascending x values */
  xs: ArrayLike<number>;
  /** y values (NaN: a gap) */
  ys: ArrayLike<number>;
  /** the unsmoothed values, drawn faint behind (same xs) */
  raw?: ArrayLike<number>;
  /** a band (group min/max or mean ± std) around the line (same xs) */
  lo?: ArrayLike<number>;
  hi?: ArrayLike<number>;
  /** the step of each point (the readout says it when the x axis is not the step) */
  steps?: ArrayLike<number>;
}

/** step: integer ticks; number: any metric; time: unix seconds; duration: seconds (unit picked) */
export type XKind = "step" | "number" | "time" | "duration";
export type LegendPlace = "off" | "top" | "bottom" | "right";

export interface PlotOptions {
  height?: number;
  xLabel?: string;
  xKind?: XKind;
  logX?: boolean;
  logY?: boolean;
  /** y range from the 5th to the 95th percentile of the values (lines beyond are clipped) */
  clipOutliers?: boolean;
  legend?: LegendPlace;
  /** at most this many series in the readout (the closest to the cursor) */
  maxReadout?: number;
  /** the label of the y values in the readout (a metric name) */
  yName?: string;
  /** the data grows (running runs): keep room on the right so that new points are drawn
   * onto the chart as they come (`extend`) instead of redrawing it */
  growing?: boolean;
}

interface Frame {
  left: number;
  top: number;
  width: number;
  height: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

const FONT = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const AXIS = "#5d6675";
const GRID = "#edf0f4";
/** room kept right of a growing chart's data, as a share of its x span */
const GROW_ROOM = 0.15;

function fade(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (m) return `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${alpha})`;
  const hsl = /^hsl\(([^)]+)\)$/.exec(color);
  if (hsl) return `hsla(${hsl[1]}, ${alpha})`;
  return color;
}

/** Index of the point of `xs` (ascending) nearest to `x`, or -1 when empty. */
export function nearestIndex(xs: ArrayLike<number>, x: number): number {
  const n = xs.length;
  if (!n) return -1;
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid;
    else hi = mid;
  }
  return Math.abs(xs[lo] - x) <= Math.abs(xs[hi] - x) ? lo : hi;
}

function quantile(sorted: Float64Array, q: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

/** The last point of a series as drawn: its x, y (and raw y) and how many points it had. */
interface Tail {
  n: number;
  x: number;
  y: number;
  r: number;
}

function tailOf(s: PlotSeries): Tail {
  const n = s.xs.length;
  return n ? { n, x: s.xs[n - 1], y: s.ys[n - 1], r: s.raw ? s.raw[n - 1] : NaN } : { n: 0, x: NaN, y: NaN, r: NaN };
}

export class Plot {
  readonly el: HTMLElement;
  private base: HTMLCanvasElement;
  private overlay: HTMLCanvasElement;
  private area: HTMLElement;
  private legendEl: HTMLElement;
  private readout: HTMLElement;
  private observer: ResizeObserver;
  private frame: Frame | null = null;
  private zoom: [number, number] | null = null;
  private drag: { x: number; cur: number } | null = null;
  private hover: { x: number; y: number } | null = null;
  private raf = 0;
  private lastWidth = 0;
  /** the plot area's width as the resize observer last reported it (0: not yet) */
  private areaWidth = 0;
  /** the last point of each series on the canvas (extend draws the points after it) */
  private drawnTail = new Map<string, Tail>();
  private optsKey = "";
  /** series id -> index in `indexed` (extendSome's lookup; rebuilt when the series change) */
  private indexOf: Map<string, number> | null = null;
  private indexed: PlotSeries[] | null = null;
  /** what the readout shows while not hovering ("" after a hover) */
  private readoutSig = "";

  constructor(
    private series: PlotSeries[],
    private opts: PlotOptions = {},
  ) {
    this.base = h("canvas.plot-base");
    this.overlay = h("canvas.plot-overlay", { "aria-hidden": "true" });
    this.area = h("div.plot-area", null, this.base, this.overlay);
    this.legendEl = h("div.plot-legend");
    this.readout = h("div.readout", { "aria-live": "off" });
    this.el = h("div.plot", null, this.legendEl, this.area, this.readout);
    this.base.setAttribute("role", "img");
    this.observer = new ResizeObserver((entries) => {
      const w = Math.floor(entries[entries.length - 1].contentRect.width);
      this.areaWidth = w;
      if (w && Math.abs(w - this.lastWidth) > 1) this.draw();
    });
    this.observer.observe(this.area);
    this.overlay.addEventListener("mousemove", (e) => this.onMove(e));
    this.overlay.addEventListener("mouseleave", () => {
      this.hover = null;
      if (!this.drag) this.schedule();
      this.showReadout(null);
    });
    this.overlay.addEventListener("mousedown", (e) => {
      if (e.button !== 0) return;
      const [x] = this.local(e);
      this.drag = { x, cur: x };
    });
    window.addEventListener("mouseup", this.onUp);
    this.overlay.addEventListener("dblclick", () => {
      this.zoom = null;
      this.draw();
    });
  }

  /** Replace the data (and options); the zoom stays unless `resetZoom`. */
  set(series: PlotSeries[], opts?: PlotOptions, resetZoom = false): void {
    this.series = series;
    if (opts) this.opts = opts;
    if (resetZoom) this.zoom = null;
    this.draw();
  }

  /** The same series with more points at their ends (live runs): the new segments are drawn
   * onto the chart when they fit its axes; anything else redraws it. A series may also have
   * been thinned before its new points (the live cache keeps its size bounded): what is on the
   * canvas stays (it has every point the thinned line has), and the new segments start at the
   * last point drawn, which thinning keeps. */
  extend(series: PlotSeries[], opts?: PlotOptions): void {
    if (series.length !== this.series.length) {
      this.set(series, opts);
      return;
    }
    this.extendAt(series, opts, null);
  }

  /** Like `extend` when only `updates` (series of the chart, by id) have new points: the
   * others are neither read nor drawn again, so a live update costs the series that grew, not
   * the chart's hundreds of lines. False (nothing done) when an update is not on the chart. */
  extendSome(updates: PlotSeries[], opts?: PlotOptions): boolean {
    if (this.indexOf === null || this.indexed !== this.series) {
      this.indexOf = new Map(this.series.map((s, k) => [s.id, k]));
      this.indexed = this.series;
    }
    const next = this.series.slice();
    const at: number[] = [];
    for (const u of updates) {
      const k = this.indexOf.get(u.id);
      if (k === undefined) return false;
      next[k] = u;
      at.push(k);
    }
    this.extendAt(next, opts, at);
    return true;
  }

  /** Draw the new points of `series[k]` for each k of `at` (every series when null) onto the
   * chart when they fit its axes; else redraw it with `series`. */
  private extendAt(series: PlotSeries[], opts: PlotOptions | undefined, at: number[] | null): void {
    const f = this.frame;
    const key = JSON.stringify(opts ?? this.opts);
    if (!f || this.zoom || key !== this.optsKey || !this.el.isConnected) {
      this.set(series, opts);
      return;
    }
    const logX = !!this.opts.logX;
    const logY = !!this.opts.logY;
    const fits = (x: number, y: number) => {
      if (!Number.isFinite(x) || !Number.isFinite(y)) return true; // gaps draw nothing
      const tx = this.tx(x, logX);
      const ty = this.tx(y, logY);
      return tx >= f.x0 && tx <= f.x1 && ty >= f.y0 && ty <= f.y1;
    };
    const ks = at ?? series.map((_, k) => k);
    // where each series' new points start: just after its last point on the canvas
    const starts: number[] = new Array(ks.length);
    for (let j = 0; j < ks.length; j++) {
      const k = ks[j];
      const s = series[k];
      const tail = this.drawnTail.get(s.id);
      if (s.id !== this.series[k].id || tail === undefined || s.lo || s.hi) {
        this.set(series, opts);
        return;
      }
      const n = s.xs.length;
      let from = n - 1;
      if (tail.n === 0) from = -1;
      else {
        while (from >= 0 && !(s.xs[from] <= tail.x)) from--;
        // the point drawn last must still be there, with the same value (else: a new line)
        if (from < 0 || !Object.is(s.xs[from], tail.x) || !Object.is(s.ys[from], tail.y) || (s.raw && !Object.is(s.raw[from], tail.r))) {
          this.set(series, opts);
          return;
        }
      }
      for (let i = from + 1; i < n; i++) {
        if (!fits(s.xs[i], s.ys[i]) || (s.raw && !fits(s.xs[i], s.raw[i]))) {
          this.set(series, opts);
          return;
        }
      }
      starts[j] = from;
    }
    // every new point fits: draw the new segments only
    const dpr = window.devicePixelRatio || 1;
    const ctx = this.base.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.save();
    ctx.beginPath();
    ctx.rect(f.left, f.top, f.width, f.height);
    ctx.clip();
    const many = series.length > 60;
    for (let j = 0; j < ks.length; j++) {
      const s = series[ks[j]];
      const from = starts[j];
      if (from === s.xs.length - 1) continue;
      const start = Math.max(0, from);
      if (s.raw) this.line(ctx, s.xs, s.raw, fade(s.color, 0.22), 1, start);
      this.line(ctx, s.xs, s.ys, many ? fade(s.color, 0.75) : s.color, many ? 1 : 1.5, start);
      this.drawnTail.set(s.id, tailOf(s));
    }
    ctx.restore();
    if (at !== null && this.indexed === this.series) this.indexed = series; // same ids, same places
    this.series = series;
    let points = 0;
    for (const s of series) points += s.xs.length;
    this.el.dataset.points = String(points);
    this.el.dataset.extended = String(Number(this.el.dataset.extended ?? "0") + 1);
    if (!this.hover) this.showReadout(null);
    else this.schedule();
  }

  get zoomRange(): [number, number] | null {
    return this.zoom;
  }

  private onUp = (e: MouseEvent): void => {
    if (!this.drag) return;
    const d = this.drag;
    this.drag = null;
    const f = this.frame;
    if (f && Math.abs(d.cur - d.x) > 5) {
      const a = this.xAt(Math.min(d.x, d.cur));
      const b = this.xAt(Math.max(d.x, d.cur));
      if (b > a) {
        this.zoom = [a, b];
        this.draw();
        return;
      }
    }
    void e;
    this.schedule();
  };

  private local(e: MouseEvent): [number, number] {
    const r = this.overlay.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  private onMove(e: MouseEvent): void {
    const [x, y] = this.local(e);
    this.hover = { x, y };
    if (this.drag) this.drag.cur = x;
    this.schedule();
  }

  private schedule(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.drawOverlay();
    });
  }

  // -- scales -----------------------------------------------------------------------------------

  private tx(v: number, log: boolean): number {
    return log ? Math.log10(v) : v;
  }

  private px(v: number): number {
    const f = this.frame!;
    const t = this.tx(v, !!this.opts.logX);
    return f.left + ((t - f.x0) / (f.x1 - f.x0 || 1)) * f.width;
  }

  private py(v: number): number {
    const f = this.frame!;
    const t = this.tx(v, !!this.opts.logY);
    return f.top + (1 - (t - f.y0) / (f.y1 - f.y0 || 1)) * f.height;
  }

  private xAt(pxl: number): number {
    const f = this.frame!;
    const t = f.x0 + ((pxl - f.left) / (f.width || 1)) * (f.x1 - f.x0);
    return this.opts.logX ? Math.pow(10, t) : t;
  }

  private extents(): { x: [number, number]; y: [number, number] } {
    const logX = !!this.opts.logX;
    const logY = !!this.opts.logY;
    let xmin = Infinity;
    let xmax = -Infinity;
    for (const s of this.series) {
      for (let i = 0; i < s.xs.length; i++) {
        const x = s.xs[i];
        if (!Number.isFinite(x) || (logX && x <= 0)) continue;
        if (x < xmin) xmin = x;
        if (x > xmax) xmax = x;
      }
    }
    if (this.zoom) [xmin, xmax] = this.zoom;
    // room on the right for a growing chart's next points: a live update draws them onto the
    // canvas (extend) until they reach the edge, then the chart is redrawn with room again
    else if (this.opts.growing && xmax > xmin && !logX) xmax += (xmax - xmin) * GROW_ROOM;
    const values: number[] = [];
    let ymin = Infinity;
    let ymax = -Infinity;
    const take = (arr: ArrayLike<number> | undefined, xs: ArrayLike<number>) => {
      if (!arr) return;
      for (let i = 0; i < arr.length; i++) {
        const y = arr[i];
        const x = xs[i];
        if (!Number.isFinite(y) || (logY && y <= 0) || x < xmin || x > xmax) continue;
        if (y < ymin) ymin = y;
        if (y > ymax) ymax = y;
        if (this.opts.clipOutliers) values.push(y);
      }
    };
    for (const s of this.series) {
      take(s.ys, s.xs);
      take(s.lo, s.xs);
      take(s.hi, s.xs);
      take(s.raw, s.xs);
    }
    if (this.opts.clipOutliers && values.length > 20) {
      const sorted = Float64Array.from(values).sort();
      const q0 = quantile(sorted, 0.05);
      const q1 = quantile(sorted, 0.95);
      const pad = (q1 - q0) * 0.1;
      ymin = Math.max(ymin, q0 - pad);
      ymax = Math.min(ymax, q1 + pad);
    }
    if (!Number.isFinite(xmin)) [xmin, xmax] = [0, 1];
    if (!Number.isFinite(ymin)) [ymin, ymax] = logY ? [1, 10] : [0, 1];
    if (xmax === xmin) [xmin, xmax] = logX ? [xmin / 2, xmax * 2] : [xmin - 0.5, xmax + 0.5];
    if (ymax === ymin) {
      const d = Math.abs(ymin) * 0.1 || 0.5;
      [ymin, ymax] = logY ? [ymin / 2, ymax * 2] : [ymin - d, ymax + d];
    } else if (!logY) {
      const pad = (ymax - ymin) * (this.opts.growing ? 0.08 : 0.04);
      [ymin, ymax] = [ymin - pad, ymax + pad];
    }
    return { x: [xmin, xmax], y: [ymin, ymax] };
  }

  private xTicks(lo: number, hi: number, count: number): Tick[] {
    const kind = this.opts.xKind ?? "number";
    if (this.opts.logX) return logTicks(lo, hi, count);
    if (kind === "time") return timeTicks(lo, hi, count);
    if (kind === "duration") {
      const { seconds } = durationUnit(Math.max(Math.abs(lo), Math.abs(hi)));
      return linearTicks(lo / seconds, hi / seconds, count).map((t) => ({ value: t.value * seconds, label: t.label }));
    }
    return linearTicks(lo, hi, count, kind === "step");
  }

  xLabelText(): string {
    const base = this.opts.xLabel ?? "step";
    if (this.opts.xKind === "duration" && this.frame) {
      const hi = this.opts.logX ? Math.pow(10, this.frame.x1) : this.frame.x1;
      const lo = this.opts.logX ? Math.pow(10, this.frame.x0) : this.frame.x0;
      return `${base} (${durationUnit(Math.max(Math.abs(lo), Math.abs(hi))).unit})`;
    }
    return base;
  }

  // -- drawing ----------------------------------------------------------------------------------

  draw(): void {
    // the width the resize observer saw (reading clientWidth after other panels' writes would
    // force a layout per panel); before its first answer, the element's own
    if (!this.el.isConnected) return;
    const width = this.areaWidth || Math.floor(this.area.clientWidth);
    if (!width) return;
    this.lastWidth = width;
    const height = this.opts.height ?? 220;
    const dpr = window.devicePixelRatio || 1;
    // a canvas keeps its bitmap while its size stays (setting a size, even the same one,
    // allocates a new one): redraws of the same size clear it instead
    const bw = Math.floor(width * dpr);
    const bh = Math.floor(height * dpr);
    for (const c of [this.base, this.overlay]) {
      if (c.width !== bw) c.width = bw;
      if (c.height !== bh) c.height = bh;
      if (c.style.width !== `${width}px`) c.style.width = `${width}px`;
      if (c.style.height !== `${height}px`) c.style.height = `${height}px`;
    }
    if (this.area.style.height !== `${height}px`) this.area.style.height = `${height}px`;
    const ctx = this.base.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;
    const ext = this.extents();
    const logX = !!this.opts.logX;
    const logY = !!this.opts.logY;
    // y ticks first: their widest label sets the left margin (labels are never clipped)
    const top = 8;
    const bottom = 34;
    const plotH = Math.max(20, height - top - bottom);
    const yTicks = logY ? logTicks(ext.y[0], ext.y[1], Math.max(2, Math.floor(plotH / 36))) : linearTicks(ext.y[0], ext.y[1], Math.max(2, Math.floor(plotH / 36)));
    const labelW = Math.max(0, ...yTicks.map((t) => ctx.measureText(t.label).width));
    const left = Math.ceil(labelW) + 12;
    const right = 14;
    const plotW = Math.max(20, width - left - right);
    this.frame = {
      left,
      top,
      width: plotW,
      height: plotH,
      x0: this.tx(ext.x[0], logX),
      x1: this.tx(ext.x[1], logX),
      y0: this.tx(ext.y[0], logY),
      y1: this.tx(ext.y[1], logY),
    };
    let xTicks = this.xTicks(ext.x[0], ext.x[1], Math.max(2, Math.floor(plotW / 90)));
    // labels wider than their spacing: fewer ticks
    for (let tries = 0; tries < 4 && xTicks.length > 2; tries++) {
      const widest = Math.max(...xTicks.map((t) => ctx.measureText(t.label).width));
      const spacing = plotW / xTicks.length;
      if (widest + 12 <= spacing) break;
      xTicks = this.xTicks(ext.x[0], ext.x[1], Math.max(2, Math.floor(xTicks.length / 2)));
    }
    // grid and ticks
    ctx.strokeStyle = GRID;
    ctx.lineWidth = 1;
    ctx.fillStyle = AXIS;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of yTicks) {
      const y = Math.round(this.py(t.value)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + plotW, y);
      ctx.stroke();
      ctx.fillText(t.label, left - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of xTicks) {
      const x = Math.round(this.px(t.value)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + plotH);
      ctx.stroke();
      ctx.fillText(t.label, x, top + plotH + 4);
    }
    ctx.strokeStyle = "#c3cad5";
    ctx.beginPath();
    ctx.moveTo(left + 0.5, top);
    ctx.lineTo(left + 0.5, top + plotH + 0.5);
    ctx.lineTo(left + plotW, top + plotH + 0.5);
    ctx.stroke();
    ctx.fillStyle = AXIS;
    ctx.fillText(this.xLabelText(), left + plotW / 2, top + plotH + 19);
    // data, clipped to the plot
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, plotW, plotH);
    ctx.clip();
    const many = this.series.length > 60;
    for (const s of this.series) if (s.lo && s.hi) this.band(ctx, s);
    for (const s of this.series) if (s.raw) this.line(ctx, s.xs, s.raw, fade(s.color, 0.22), 1);
    for (const s of this.series) this.line(ctx, s.xs, s.ys, many ? fade(s.color, 0.75) : s.color, many ? 1 : 1.5);
    ctx.restore();
    this.drawnTail = new Map(this.series.map((s) => [s.id, tailOf(s)]));
    this.optsKey = JSON.stringify(this.opts);
    this.el.dataset.xticks = JSON.stringify(xTicks.map((t) => [t.value, t.label]));
    this.el.dataset.yticks = JSON.stringify(yTicks.map((t) => [t.value, t.label]));
    this.el.dataset.series = String(this.series.length);
    this.el.dataset.xkind = this.opts.logX ? "log" : this.opts.xKind ?? "number";
    this.el.dataset.ylog = String(!!this.opts.logY);
    this.el.dataset.xlabel = this.xLabelText();
    this.el.dataset.points = String(this.series.reduce((n, s) => n + s.xs.length, 0));
    // where the y labels start (right-aligned 6 px left of the plot: never below 0, never cut)
    this.el.dataset.ylabelsLeft = String(left - 6 - labelW);
    let bandLo = Infinity;
    let bandHi = -Infinity;
    for (const s of this.series) {
      if (!s.lo || !s.hi) continue;
      for (let i = 0; i < s.lo.length; i++) if (s.lo[i] < bandLo) bandLo = s.lo[i];
      for (let i = 0; i < s.hi.length; i++) if (s.hi[i] > bandHi) bandHi = s.hi[i];
    }
    if (Number.isFinite(bandHi)) this.el.dataset.band = JSON.stringify([bandLo, bandHi]);
    else delete this.el.dataset.band;
    this.base.setAttribute("aria-label", `Line chart of ${this.opts.yName ?? "values"} over ${this.xLabelText()}: ${this.series.length} line${this.series.length === 1 ? "" : "s"}`);
    this.drawLegend();
    this.drawOverlay();
    if (!this.hover) this.showReadout(null);
  }

  private line(ctx: CanvasRenderingContext2D, xs: ArrayLike<number>, ys: ArrayLike<number>, color: string, width: number, from = 0): void {
    const f = this.frame!;
    const logX = !!this.opts.logX;
    const logY = !!this.opts.logY;
    // the projection inlined: (value - v0) * k + offset, on log10 values for log axes
    const kx = f.width / (f.x1 - f.x0 || 1);
    const ky = -f.height / (f.y1 - f.y0 || 1);
    const ox = f.left - f.x0 * kx;
    const oy = f.top + f.height - f.y0 * ky;
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    let pen = false;
    let count = 0;
    let lastX = 0;
    let lastY = 0;
    for (let i = from; i < xs.length; i++) {
      const x = xs[i];
      const y = ys[i];
      if (!(x === x && y === y) || x === Infinity || x === -Infinity || y === Infinity || y === -Infinity || (logX && x <= 0) || (logY && y <= 0)) {
        if (pen && count === 1) ctx.lineTo(lastX + 0.5, lastY); // a lone point stays visible
        pen = false;
        continue;
      }
      lastX = (logX ? Math.log10(x) : x) * kx + ox;
      lastY = (logY ? Math.log10(y) : y) * ky + oy;
      if (pen) ctx.lineTo(lastX, lastY);
      else {
        ctx.moveTo(lastX, lastY);
        count = 0;
      }
      pen = true;
      count++;
    }
    if (pen && count === 1 && from === 0) ctx.lineTo(lastX + 1, lastY);
    ctx.stroke();
  }

  private band(ctx: CanvasRenderingContext2D, s: PlotSeries): void {
    const lo = s.lo!;
    const hi = s.hi!;
    ctx.fillStyle = fade(s.color, 0.16);
    let start = -1;
    const flush = (end: number) => {
      if (start < 0 || end - start < 1) return;
      ctx.beginPath();
      for (let i = start; i <= end; i++) {
        const x = this.px(s.xs[i]);
        const y = this.py(hi[i]);
        if (i === start) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      }
      for (let i = end; i >= start; i--) ctx.lineTo(this.px(s.xs[i]), this.py(lo[i]));
      ctx.closePath();
      ctx.fill();
    };
    const ok = (i: number) => Number.isFinite(lo[i]) && Number.isFinite(hi[i]) && Number.isFinite(s.xs[i]) && (!this.opts.logY || (lo[i] > 0 && hi[i] > 0));
    for (let i = 0; i < s.xs.length; i++) {
      if (ok(i)) {
        if (start < 0) start = i;
      } else {
        flush(i - 1);
        start = -1;
      }
    }
    flush(s.xs.length - 1);
  }

  private drawLegend(): void {
    const place = this.opts.legend ?? "off";
    this.el.dataset.legend = place;
    if (place === "off") {
      this.legendEl.replaceChildren();
      this.legendEl.hidden = true;
      return;
    }
    this.legendEl.hidden = false;
    const shown = this.series.slice(0, 50);
    const items: HTMLElement[] = shown.map((s) => h("span.item", { "data-series": s.id }, h("i.swatch", { style: `background:${s.color}` }), s.label));
    if (this.series.length > shown.length) items.push(h("span.muted", null, `+${this.series.length - shown.length} more`));
    this.legendEl.replaceChildren(...items);
  }

  // -- hover ------------------------------------------------------------------------------------

  private nearest(): { s: PlotSeries; i: number; px: number; py: number }[] {
    if (!this.hover || !this.frame) return [];
    const x = this.xAt(this.hover.x);
    const out: { s: PlotSeries; i: number; px: number; py: number }[] = [];
    for (const s of this.series) {
      const i = nearestIndex(s.xs, x);
      if (i < 0) continue;
      // the nearest point with a value (NaN points are gaps)
      let j = i;
      if (!Number.isFinite(s.ys[j])) {
        let a = i - 1;
        let b = i + 1;
        j = -1;
        while (a >= 0 || b < s.xs.length) {
          if (a >= 0 && Number.isFinite(s.ys[a])) {
            j = a;
            break;
          }
          if (b < s.xs.length && Number.isFinite(s.ys[b])) {
            j = b;
            break;
          }
          a--;
          b++;
        }
        if (j < 0) continue;
      }
      out.push({ s, i: j, px: this.px(s.xs[j]), py: this.py(s.ys[j]) });
    }
    return out;
  }

  private drawOverlay(): void {
    const f = this.frame;
    const width = this.lastWidth;
    const height = this.opts.height ?? 220;
    const dpr = window.devicePixelRatio || 1;
    const ctx = this.overlay.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (!f) return;
    if (this.drag && Math.abs(this.drag.cur - this.drag.x) > 1) {
      ctx.fillStyle = "rgba(31,95,191,0.12)";
      const a = Math.max(f.left, Math.min(this.drag.x, this.drag.cur));
      const b = Math.min(f.left + f.width, Math.max(this.drag.x, this.drag.cur));
      ctx.fillRect(a, f.top, b - a, f.height);
    }
    if (!this.hover) return;
    const hx = this.hover.x;
    if (hx < f.left || hx > f.left + f.width) return;
    ctx.strokeStyle = "rgba(60,70,90,0.45)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(Math.round(hx) + 0.5, f.top);
    ctx.lineTo(Math.round(hx) + 0.5, f.top + f.height);
    ctx.stroke();
    const pts = this.nearest();
    // the line nearest to the cursor stands out
    let best: (typeof pts)[number] | null = null;
    for (const p of pts) if (!best || Math.abs(p.py - this.hover.y) < Math.abs(best.py - this.hover.y)) best = p;
    ctx.save();
    ctx.beginPath();
    ctx.rect(f.left, f.top, f.width, f.height);
    ctx.clip();
    if (best && this.series.length > 1) this.line(ctx, best.s.xs, best.s.ys, best.s.color, 2.5);
    for (const p of pts.slice(0, 200)) {
      ctx.fillStyle = p.s.color;
      ctx.beginPath();
      ctx.arc(p.px, p.py, p === best ? 4 : 2.5, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.restore();
    this.showReadout(pts, best?.s.id ?? null);
  }

  private showReadout(pts: { s: PlotSeries; i: number; py: number }[] | null, bestId: string | null = null): void {
    const max = this.opts.maxReadout ?? 12;
    const parts: (HTMLElement | string)[] = [];
    const xName = this.opts.xLabel ?? "step";
    const fmtX = (x: number) => (this.opts.xKind === "time" ? new Date(x * 1000).toLocaleString() : fmtNumber(x));
    if (pts === null) {
      // not hovering: the last value of each series (up to `max`); unchanged, it stays as it
      // is (a live update that moves no last value touches no element)
      const last: { s: PlotSeries; text: string }[] = [];
      let sig = `${this.series.length}`;
      if (this.series.length <= max) {
        for (const s of this.series) {
          let v = NaN;
          for (let j = s.ys.length - 1; j >= 0; j--) if (Number.isFinite(s.ys[j])) { v = s.ys[j]; break; }
          const text = Number.isFinite(v) ? fmtNumber(v) : "–";
          last.push({ s, text });
          sig += `\u0000${s.id}\u0000${s.label}\u0000${s.color}\u0000${text}`;
        }
      }
      if (sig === this.readoutSig) return;
      this.readoutSig = sig;
      if (this.series.length > max) parts.push(h("span.muted", null, `${this.series.length} lines: hover for values`));
      for (const { s, text } of last) parts.push(h("span.item", { "data-series": s.id }, h("i.swatch", { style: `background:${s.color}` }), `${s.label}: `, h("b", null, text)));
      this.readout.replaceChildren(...parts);
      delete this.el.dataset.hover;
      return;
    }
    this.readoutSig = "";
    if (!pts.length) {
      this.readout.replaceChildren();
      return;
    }
    const ref = pts.find((p) => p.s.id === bestId) ?? pts[0];
    parts.push(h("span.x", null, `${xName} ${fmtX(ref.s.xs[ref.i])}`));
    let chosen = pts;
    if (pts.length > max) {
      const y = this.hover?.y ?? 0;
      chosen = [...pts].sort((a, b) => Math.abs(a.py - y) - Math.abs(b.py - y)).slice(0, max);
    }
    chosen = [...chosen].sort((a, b) => a.py - b.py); // top of the chart first
    for (const p of chosen) {
      const s = p.s;
      const stepNote = s.steps && this.opts.xKind !== "step" ? ` @${fmtNumber(s.steps[p.i])}` : s.xs[p.i] !== ref.s.xs[ref.i] ? ` @${fmtX(s.xs[p.i])}` : "";
      parts.push(
        h(
          "span.item",
          { "data-series": s.id, class: s.id === bestId ? "hl" : null },
          h("i.swatch", { style: `background:${s.color}` }),
          `${s.label}: `,
          h("b", null, fmtNumber(s.ys[p.i])),
          stepNote ? h("span.muted", null, stepNote) : null,
        ),
      );
    }
    if (pts.length > chosen.length) parts.push(h("span.muted", null, `+${pts.length - chosen.length} more`));
    this.readout.replaceChildren(...parts);
    this.el.dataset.hover = "true";
  }

  destroy(): void {
    this.observer.disconnect();
    window.removeEventListener("mouseup", this.onUp);
    if (this.raf) cancelAnimationFrame(this.raf);
  }
}
