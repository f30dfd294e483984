// Parallel coordinates on a canvas: one vertical axis per parameter (numeric: linear or log;
// categorical: evenly spaced values) and the metric last; one polyline per run coloured by the
// metric. Drag vertically on an axis to brush a range; brushes on several axes intersect;
// click an axis without dragging to clear its brush. `onBrush` receives the runs kept.

import { fmtNumber } from "../util";

export interface PCAxis {
  name: string;
  /** numeric values (null: missing) or category labels */
  values: (number | string | null)[];
  log?: boolean;
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
  const categorical = axis.values.some((v) => typeof v === "string");
  if (categorical) {
    const cats = [...new Set(axis.values.filter((v) => v !== null).map(String))].sort();
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
  private pad = { top: 28, bottom: 24, left: 40, right: 60 };

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
        ctx.strokeStyle = pass ? tint(cval, 0.85) : "rgba(180,180,180,0.25)";
        ctx.lineWidth = pass ? 1.4 : 1;
        ctx.stroke();
      });
    }
    // axes, labels, brushes
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    this.scales.forEach((s, i) => {
      const x = this.xOf(i, width);
      ctx.strokeStyle = "#444";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, this.yOf(0));
      ctx.lineTo(x, this.yOf(1));
      ctx.stroke();
      ctx.fillStyle = "#222";
      ctx.textAlign = "center";
      ctx.fillText(s.axis.name, x, 14);
      ctx.textAlign = "left";
      ctx.fillStyle = "#555";
      if (s.categorical) {
        s.cats.forEach((c) => ctx.fillText(c, x + 4, this.yOf(s.pos(c) ?? 0) + 4));
      } else {
        const fmt = (t: number) => fmtNumber(s.axis.log ? Math.pow(10, t) : t);
        ctx.fillText(fmt(s.hi), x + 4, this.yOf(1) + 4);
        ctx.fillText(fmt(s.lo), x + 4, this.yOf(0));
      }
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
    this.el.dataset.lines = String(this.colorValues.length);
    this.el.dataset.kept = String(this.kept.filter(Boolean).length);
    this.el.dataset.axes = String(this.scales.length);
  }

  destroy(): void {
    this.observer.disconnect();
  }
}
