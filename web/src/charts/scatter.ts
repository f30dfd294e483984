// A scatter plot on a canvas (metric against one parameter); categorical x values are spread
// evenly with a little jitter. Hovering a point names its run.

import { fmtNumber } from "../util";
import { linearTicks, logTicks, type Tick } from "./ticks";

export interface ScatterPoint {
  x: number | string | null;
  y: number | null;
  label: string;
  highlight?: boolean;
  /** the point's colour (a run's); default blue, red when highlighted */
  color?: string;
  id?: string;
}

export class Scatter {
  readonly el: HTMLElement;
  private canvas: HTMLCanvasElement;
  private tip: HTMLElement;
  private placed: { px: number; py: number; p: ScatterPoint }[] = [];
  private observer: ResizeObserver;
  private height = 260;
  logY = false;

  constructor(private points: ScatterPoint[], private xName: string, private yName: string, private logX = false) {
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("role", "img");
    this.tip = document.createElement("div");
    this.tip.className = "scatter-tip";
    this.tip.hidden = true;
    this.el = document.createElement("div");
    this.el.className = "scatter";
    this.el.append(this.canvas, this.tip);
    this.observer = new ResizeObserver(() => this.draw());
    this.observer.observe(this.el);
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
  }

  set(points: ScatterPoint[], xName: string, logX: boolean, yName?: string, logY?: boolean): void {
    this.points = points;
    this.xName = xName;
    this.logX = logX;
    if (yName !== undefined) this.yName = yName;
    if (logY !== undefined) this.logY = logY;
    this.draw();
  }

  setHeight(height: number): void {
    this.height = height;
    this.draw();
  }

  draw(): void {
    const width = this.el.clientWidth;
    if (!width) return;
    const dpr = window.devicePixelRatio || 1;
    const c = this.canvas;
    c.width = Math.floor(width * dpr);
    c.height = Math.floor(this.height * dpr);
    c.style.width = `${width}px`;
    c.style.height = `${this.height}px`;
    const ctx = c.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, this.height);
    const pts = this.points.filter((p) => p.y !== null && Number.isFinite(p.y) && p.x !== null && (!this.logY || (p.y as number) > 0));
    const categorical = pts.some((p) => typeof p.x === "string");
    const cats = categorical ? [...new Set(pts.map((p) => String(p.x)))].sort() : [];
    const log = this.logX && !categorical && pts.every((p) => (p.x as number) > 0);
    const logY = this.logY;
    const xv = (p: ScatterPoint, i: number) => {
      if (categorical) return cats.indexOf(String(p.x)) + (((i * 7919) % 100) / 100 - 0.5) * 0.3;
      return log ? Math.log10(p.x as number) : (p.x as number);
    };
    const xs = pts.map(xv);
    const ys = pts.map((p) => (logY ? Math.log10(p.y as number) : (p.y as number)));
    let [x0, x1] = categorical ? [-0.5, cats.length - 0.5] : [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (!(x1 > x0)) [x0, x1] = [x0 - 1, x0 + 1];
    if (!(y1 > y0)) [y0, y1] = [y0 - 1, y0 + 1];
    if (!categorical) {
      const px0 = (x1 - x0) * 0.04;
      [x0, x1] = [x0 - px0, x1 + px0];
    }
    const py0 = (y1 - y0) * 0.05;
    [y0, y1] = [y0 - py0, y1 + py0];
    ctx.font = "11px system-ui, sans-serif";
    const ticksOf = (lo: number, hi: number, isLog: boolean, count: number): Tick[] =>
      isLog ? logTicks(Math.pow(10, lo), Math.pow(10, hi), count).map((t) => ({ value: Math.log10(t.value), label: t.label })) : linearTicks(lo, hi, count);
    const yTicks = ticksOf(y0, y1, logY, Math.max(2, Math.floor(this.height / 45)));
    const pad = { l: Math.ceil(Math.max(20, ...yTicks.map((t) => ctx.measureText(t.label).width))) + 12, r: 16, t: 12, b: 36 };
    const xTicks: Tick[] = categorical ? [] : ticksOf(x0, x1, log, Math.max(2, Math.floor((width - pad.l - pad.r) / 90)));
    const px = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
    const py = (y: number) => pad.t + (1 - (y - y0) / (y1 - y0)) * (this.height - pad.t - pad.b);
    ctx.strokeStyle = "#edf0f4";
    ctx.fillStyle = "#5d6675";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of yTicks) {
      const y = Math.round(py(t.value)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.l, y);
      ctx.lineTo(width - pad.r, y);
      ctx.stroke();
      ctx.fillText(t.label, pad.l - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of xTicks) {
      const x = Math.round(px(t.value)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, pad.t);
      ctx.lineTo(x, this.height - pad.b);
      ctx.stroke();
      ctx.fillText(t.label, x, this.height - pad.b + 4);
    }
    // categories: every one labelled, thinned to what fits
    if (categorical) {
      const room = (width - pad.l - pad.r) / Math.max(1, cats.length);
      const every = Math.max(1, Math.ceil(Math.max(...cats.map((c) => ctx.measureText(c).width)) / Math.max(1, room - 6)));
      cats.forEach((cname, i) => {
        if (i % every === 0) ctx.fillText(cname, px(i), this.height - pad.b + 4);
      });
    }
    ctx.strokeStyle = "#c3cad5";
    ctx.beginPath();
    ctx.moveTo(pad.l + 0.5, pad.t);
    ctx.lineTo(pad.l + 0.5, this.height - pad.b + 0.5);
    ctx.lineTo(width - pad.r, this.height - pad.b + 0.5);
    ctx.stroke();
    ctx.fillStyle = "#444";
    ctx.textBaseline = "alphabetic";
    ctx.fillText(`${this.xName}${log ? " (log)" : ""}`, (pad.l + width - pad.r) / 2, this.height - 4);
    this.placed = [];
    pts.forEach((p, i) => {
      const X = px(xs[i]);
      const Y = py(ys[i]);
      this.placed.push({ px: X, py: Y, p });
      ctx.beginPath();
      ctx.arc(X, Y, p.highlight ? 5 : 3.5, 0, Math.PI * 2);
      ctx.fillStyle = p.color ?? (p.highlight ? "rgba(214,39,40,0.9)" : "rgba(31,119,180,0.7)");
      ctx.globalAlpha = p.color ? 0.85 : 1;
      ctx.fill();
      ctx.globalAlpha = 1;
      if (p.highlight && p.color) {
        ctx.strokeStyle = "#222";
        ctx.stroke();
      }
    });
    this.canvas.setAttribute("aria-label", `Scatter of ${this.yName} against ${this.xName}, ${pts.length} runs`);
    this.canvas.dataset.points = String(pts.length);
    this.el.dataset.xticks = JSON.stringify(xTicks.map((t) => [log ? Math.pow(10, t.value) : t.value, t.label]));
    this.el.dataset.yticks = JSON.stringify(yTicks.map((t) => [logY ? Math.pow(10, t.value) : t.value, t.label]));
  }

  private hover(e: MouseEvent): void {
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left;
    const y = e.clientY - r.top;
    let best: (typeof this.placed)[number] | null = null;
    let d = 100;
    for (const q of this.placed) {
      const dd = (q.px - x) ** 2 + (q.py - y) ** 2;
      if (dd < d) [best, d] = [q, dd];
    }
    if (!best) {
      this.tip.hidden = true;
      return;
    }
    this.tip.hidden = false;
    this.tip.textContent = `${best.p.label}: ${this.xName}=${typeof best.p.x === "number" ? fmtNumber(best.p.x) : best.p.x}, ${this.yName}=${fmtNumber(best.p.y as number)}`;
    this.tip.style.left = `${best.px + 8}px`;
    this.tip.style.top = `${best.py - 8}px`;
  }

  destroy(): void {
    this.observer.disconnect();
  }
}
