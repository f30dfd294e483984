// Parallel coordinates on a canvas: one vertical axis per parameter (numeric: linear or log;
// categorical: evenly spaced values) and the metric last; one polyline per run coloured by the
// metric. Drag vertically on an axis to brush a range; brushes on several axes intersect;
// click an axis without dragging to clear its brush. `onBrush` receives the runs kept.

import { linearTicks, logTicks } from "./ticks";

export interface PCAxis {
  name: string;
  /** numeric values (null: missing) or category labels */
  values: (number | string | null)[];
  log?: boolean;
  /** categories even when the values are numbers (a sweep's `values: [16, 32, 64]`) */
  categorical?: boolean;
}

/** Category order: numbers by value, then strings alphabetically. */
function categoryOrder(values: (number | string | null)[]): string[] {
  const seen = new Map<string, number | string>();
  for (const v of values) if (v !== null && !seen.has(String(v))) seen.set(String(v), v);
  return [...seen.entries()]
    .sort(([ka, a], [kb, b]) => (typeof a === "number" && typeof b === "number" ? a - b : typeof a === "number" ? -1 : typeof b === "number" ? 1 : ka.localeCompare(kb)))
    .map(([k]) => k);
}

interface Scale {
  axis: PCAxis;
  categorical: boolean;
  cats: string[];
  lo: number;
  hi: number;
  pos: (v: number | string | null) => number | null; // 0 (bottom) .. 1 (top)
}

function makeScale(axis: PCAxis): Scale {
  const nums = axis.values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  const categorical = !!axis.categorical || axis.values.some((v) => typeof v === "string");
  if (categorical) {
    const cats = categoryOrder(axis.values);
    return { axis, categorical, cats, lo: 0, hi: 1, pos: (v) => (v === null ? null : cats.length === 1 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1)) };
  }
  const log = !!axis.log && nums.every((v) => v > 0);
  const tf = (v: number) => (log ? Math.log10(v) : v);
  let lo = Math.min(...nums.map(tf));
  let hi = Math.max(...nums.map(tf));
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  if (hi === lo) [lo, hi] = [lo - 0.5, hi + 0.5];
  return {
    axis: { ...axis, log },
    categorical,
    cats: [],
    lo,
    hi,
    pos: (v) => (typeof v === "number" && Number.isFinite(v) ? (tf(v) - lo) / (hi - lo) : null),
  };
}

export class ParallelCoordinates {
  readonly el: HTMLCanvasElement;
  private scales: Scale[] = [];
  private brushes = new Map<number, [number, number]>(); // axis -> [lo, hi] in 0..1
  private drag: { axis: number; start: number } | null = null;
  private kept: boolean[] = [];
  private observer: ResizeObserver;
  private height = 320;
  /** one colour per line (a run's) instead of the metric's tint */
  lineColors: string[] | null = null;
  private pad = { top: 34, bottom: 16, left: 16, right: 16 };

  constructor(
    axes: PCAxis[],
    private colorValues: (number | null)[],
    private onBrush: (kept: boolean[]) => void,
    private goalMax = true,
  ) {
    this.el = document.createElement("canvas");
    this.el.className = "parcoords";
    this.el.setAttribute("role", "img");
    this.el.setAttribute("tabindex", "0");
    this.scales = axes.map(makeScale);
    this.kept = colorValues.map(() => true);
    this.observer = new ResizeObserver(() => this.draw());
    this.observer.observe(this.el);
    this.el.addEventListener("pointerdown", (e) => this.down(e));
    this.el.addEventListener("pointermove", (e) => this.move(e));
    this.el.addEventListener("pointerup", (e) => this.up(e));
    this.el.addEventListener("keydown", (e) => {
      if (e.key === "Escape" || e.key === "Delete") {
        this.brushes.clear();
        this.update();
      }
    });
    this.el.setAttribute("aria-label", `Parallel coordinates of ${axes.map((a) => a.name).join(", ")}; drag on an axis to filter runs, Escape clears`);
  }

  private xOf(i: number, width: number): number {
    const n = this.scales.length;
    return this.pad.left + (n === 1 ? 0.5 : i / (n - 1)) * (width - this.pad.left - this.pad.right);
  }

  private yOf(p: number): number {
    return this.pad.top + (1 - p) * (this.height - this.pad.top - this.pad.bottom);
  }

  private pOfY(y: number): number {
    return Math.max(0, Math.min(1, 1 - (y - this.pad.top) / (this.height - this.pad.top - this.pad.bottom)));
  }

  private axisAt(x: number): number {
    const w = this.el.clientWidth;
    let best = -1;
    let dist = 24;
    this.scales.forEach((_, i) => {
      const d = Math.abs(this.xOf(i, w) - x);
      if (d < dist) [best, dist] = [i, d];
    });
    return best;
  }

  private local(e: PointerEvent): [number, number] {
    const r = this.el.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  private down(e: PointerEvent): void {
    const [x, y] = this.local(e);
    const axis = this.axisAt(x);
    if (axis < 0) return;
    this.drag = { axis, start: this.pOfY(y) };
    this.el.setPointerCapture(e.pointerId);
  }

  private move(e: PointerEvent): void {
    if (!this.drag) return;
    const [, y] = this.local(e);
    const p = this.pOfY(y);
    const lo = Math.min(p, this.drag.start);
    const hi = Math.max(p, this.drag.start);
    if (hi - lo > 0.01) this.brushes.set(this.drag.axis, [lo, hi]);
    this.draw();
  }

  private up(e: PointerEvent): void {
    if (!this.drag) return;
    const [, y] = this.local(e);
    if (Math.abs(this.pOfY(y) - this.drag.start) <= 0.01) this.brushes.delete(this.drag.axis);
    this.drag = null;
    this.update();
  }

  /** Set a brush programmatically (tests, keyboard): axis index and range in 0..1. */
  brush(axis: number, lo: number, hi: number): void {
    this.brushes.set(axis, [lo, hi]);
    this.update();
  }

  private update(): void {
    this.kept = this.colorValues.map((_, run) => {
      for (const [axis, [lo, hi]] of this.brushes) {
        const p = this.scales[axis].pos(this.scales[axis].axis.values[run]);
        if (p === null || p < lo - 1e-9 || p > hi + 1e-9) return false;
      }
      return true;
    });
    this.draw();
    this.onBrush(this.kept);
  }

  draw(): void {
    const width = this.el.clientWidth;
    if (!width) return;
    const dpr = window.devicePixelRatio || 1;
    this.el.width = Math.floor(width * dpr);
    this.el.height = Math.floor(this.height * dpr);
    this.el.style.height = `${this.height}px`;
    const ctx = this.el.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, this.height);
    const cv = this.colorValues.filter((v): v is number => v !== null && Number.isFinite(v));
    const cmin = Math.min(...cv);
    const cmax = Math.max(...cv);
    const tint = (v: number | null, alpha: number) => {
      if (v === null || !Number.isFinite(v) || cmax === cmin) return `rgba(120,120,120,${alpha})`;
      let t = (v - cmin) / (cmax - cmin);
      if (!this.goalMax) t = 1 - t; // good runs are warm
      const r = Math.round(40 + 200 * t);
      const b = Math.round(220 - 180 * t);
      return `rgba(${r},${Math.round(80 + 40 * (1 - Math.abs(t - 0.5) * 2))},${b},${alpha})`;
    };
    // lines: dimmed ones first, kept ones on top
    for (const pass of [false, true]) {
      this.colorValues.forEach((cval, run) => {
        if (this.kept[run] !== pass) return;
        ctx.beginPath();
        let started = false;
        this.scales.forEach((s, i) => {
          const p = s.pos(s.axis.values[run]);
          if (p === null) {
            started = false;
            return;
          }
          const x = this.xOf(i, width);
          const y = this.yOf(p);
          if (started) ctx.lineTo(x, y);
          else ctx.moveTo(x, y);
          started = true;
        });
        ctx.strokeStyle = pass ? (this.lineColors?.[run] ?? tint(cval, 0.85)) : "rgba(180,180,180,0.25)";
        ctx.lineWidth = pass ? 1.4 : 1;
        ctx.stroke();
      });
    }
    // axes, labels, brushes: after the lines, each label on a white backing so that no line
    // crosses it; axis names shortened to the space between axes
    ctx.font = "11px system-ui, sans-serif";
    const spacing = this.scales.length > 1 ? (width - this.pad.left - this.pad.right) / (this.scales.length - 1) : width;
    const drawn: { name: string; labels: string[] }[] = [];
    const label = (text: string, x: number, y: number, align: CanvasTextAlign, color = "#444") => {
      const w = ctx.measureText(text).width;
      const left = align === "center" ? x - w / 2 : align === "right" ? x - w : x;
      ctx.fillStyle = "rgba(255,255,255,0.88)";
      ctx.fillRect(left - 2, y - 7, w + 4, 14);
      ctx.fillStyle = color;
      ctx.textAlign = align;
      ctx.fillText(text, x, y);
    };
    ctx.textBaseline = "middle";
    this.scales.forEach((s, i) => {
      const x = this.xOf(i, width);
      const n = this.scales.length;
      ctx.strokeStyle = "#444";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, this.yOf(0));
      ctx.lineTo(x, this.yOf(1));
      ctx.stroke();
      // the name on top: the first and last axes aligned inward, the others centred
      const align: CanvasTextAlign = n > 1 && i === 0 ? "left" : n > 1 && i === n - 1 ? "right" : "center";
      const room = align === "center" ? spacing - 8 : spacing / 2 + this.pad.left - 4;
      ctx.font = "600 11px system-ui, sans-serif";
      label(fit(ctx, s.axis.name, room), align === "left" ? x - 4 : align === "right" ? x + 4 : x, 14, align, "#222");
      ctx.font = "11px system-ui, sans-serif";
      // tick labels beside the axis (inside the chart for the last one)
      const side: CanvasTextAlign = i === n - 1 && n > 1 ? "right" : "left";
      const tx = side === "left" ? x + 5 : x - 5;
      const labels: string[] = [];
      if (s.categorical) {
        // every category, thinned only where they would overlap
        const gap = (this.height - this.pad.top - this.pad.bottom) / Math.max(1, s.cats.length - 1);
        const every = Math.max(1, Math.ceil(14 / Math.max(1, gap)));
        s.cats.forEach((c, k) => {
          if (k % every !== 0 && k !== s.cats.length - 1) return;
          const text = fit(ctx, c, spacing / 2 - 8);
          labels.push(c);
          label(text, tx, this.yOf(s.pos(c) ?? 0), side);
        });
      } else {
        const count = Math.max(2, Math.floor((this.height - this.pad.top - this.pad.bottom) / 40));
        const ticks = s.axis.log ? logTicks(Math.pow(10, s.lo), Math.pow(10, s.hi), count) : linearTicks(s.lo, s.hi, count);
        for (const t of ticks) {
          const p = s.axis.log ? (Math.log10(t.value) - s.lo) / (s.hi - s.lo) : (t.value - s.lo) / (s.hi - s.lo);
          if (p < -1e-9 || p > 1 + 1e-9) continue;
          const y = this.yOf(p);
          ctx.strokeStyle = "#444";
          ctx.beginPath();
          ctx.moveTo(x - 3, y);
          ctx.lineTo(x + 3, y);
          ctx.stroke();
          labels.push(t.label);
          label(t.label, tx, y, side, "#555");
        }
      }
      drawn.push({ name: s.axis.name, labels });
      const b = this.brushes.get(i);
      if (b) {
        ctx.fillStyle = "rgba(30,120,220,0.25)";
        ctx.strokeStyle = "rgba(30,120,220,0.9)";
        const y1 = this.yOf(b[1]);
        const y0 = this.yOf(b[0]);
        ctx.fillRect(x - 7, y1, 14, y0 - y1);
        ctx.strokeRect(x - 7, y1, 14, y0 - y1);
      }
    });
    this.el.dataset.labels = JSON.stringify(drawn);
    this.el.dataset.axisX = JSON.stringify(this.scales.map((_, i) => Math.round(this.xOf(i, width))));
    this.el.dataset.lines = String(this.colorValues.length);
    this.el.dataset.kept = String(this.kept.filter(Boolean).length);
    this.el.dataset.axes = String(this.scales.length);
  }

  setHeight(height: number): void {
    this.height = Math.max(160, height);
    this.draw();
  }

  destroy(): void {
    this.observer.disconnect();
  }
}

/** `text` cut with an ellipsis to `room` pixels. */
function fit(ctx: CanvasRenderingContext2D, text: string, room: number): string {
  if (ctx.measureText(text).width <= room) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(text.slice(0, mid) + "…").width <= room) lo = mid;
    else hi = mid - 1;
  }
  return lo > 0 ? text.slice(0, lo) + "…" : "…";
}
