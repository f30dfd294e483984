// Histogram panels (W&B's histogram over time): each run's `histogram` values (`{values:
// counts, bins: edges}`, inline in the history) as a heat map, steps across and values up, each
// step's counts shaded against that step's largest bin; or one step's histogram (a step slider,
// the runs' bars over each other). A click on the heat map opens that step.

import type { Doc, Json } from "../api";
import { linearTicks } from "../charts/ticks";
import { asDoc, loggedValues, mediaKind } from "../media/data";
import { floorIndex, KeySteps, StepSlider } from "../media/steps";
import { fmtNumber, h } from "../util";
import type { PanelContext, PanelInstance, PanelKind, PanelSpec, SettingField, ShownRun } from "./types";

const MAX_RUNS = 10;
const ROWS = 96;
const PAD = { left: 44, right: 8, top: 6, bottom: 20 };

interface Hist {
  counts: number[];
  edges: number[];
}

export function asHist(v: Json | undefined): Hist | null {
  const d = asDoc(v);
  if (!d || d._type !== "histogram" || !Array.isArray(d.values) || !Array.isArray(d.bins)) return null;
  const counts = d.values.map(Number);
  const edges = d.bins.map(Number);
  if (edges.length !== counts.length + 1) return null;
  return { counts, edges };
}

function range(hists: Hist[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const hst of hists) {
    const a = hst.edges[0];
    const b = hst.edges[hst.edges.length - 1];
    if (Number.isFinite(a)) lo = Math.min(lo, a);
    if (Number.isFinite(b)) hi = Math.max(hi, b);
  }
  if (!Number.isFinite(lo)) return [0, 1];
  if (hi <= lo) hi = lo + 1;
  return [lo, hi];
}

/** A step's counts spread over `rows` equal rows of [lo, hi] (a bin over several rows gives
 * each its share), scaled so that the largest row is 1. */
export function rebin(hst: Hist, lo: number, hi: number, rows: number): Float32Array {
  const out = new Float32Array(rows);
  const scale = rows / (hi - lo);
  for (let b = 0; b < hst.counts.length; b++) {
    const c = hst.counts[b];
    if (!c) continue;
    const r0 = (hst.edges[b] - lo) * scale;
    const r1 = (hst.edges[b + 1] - lo) * scale;
    if (!(r1 > r0)) {
      out[Math.min(rows - 1, Math.max(0, Math.floor(r0)))] += c;
      continue;
    }
    const density = c / (r1 - r0);
    for (let r = Math.max(0, Math.floor(r0)); r < Math.min(rows, Math.ceil(r1)); r++) out[r] += density * (Math.min(r + 1, r1) - Math.max(r, r0));
  }
  let max = 0;
  for (let r = 0; r < rows; r++) max = Math.max(max, out[r]);
  if (max > 0) for (let r = 0; r < rows; r++) out[r] /= max;
  return out;
}

function setupCanvas(canvas: HTMLCanvasElement, w: number, hgt: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(hgt * dpr);
  canvas.style.height = `${hgt}px`;
  const g = canvas.getContext("2d")!;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.font = "11px system-ui, sans-serif";
  return g;
}

function yAxis(g: CanvasRenderingContext2D, lo: number, hi: number, top: number, bottom: number): void {
  g.fillStyle = "#5b6575";
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (const t of linearTicks(lo, hi, Math.max(2, Math.floor((bottom - top) / 28)))) {
    const y = bottom - ((t.value - lo) / (hi - lo)) * (bottom - top);
    if (y < top - 1 || y > bottom + 1) continue;
    g.fillText(t.label, PAD.left - 4, y);
  }
}

function xAxis(g: CanvasRenderingContext2D, lo: number, hi: number, left: number, right: number, y: number, integer: boolean): void {
  g.fillStyle = "#5b6575";
  g.textAlign = "center";
  g.textBaseline = "top";
  for (const t of linearTicks(lo, hi, Math.max(2, Math.floor((right - left) / 70)), integer)) {
    const x = left + ((t.value - lo) / (hi - lo || 1)) * (right - left);
    if (x < left - 1 || x > right + 1) continue;
    g.fillText(t.label, x, y + 3);
  }
}

/** Draw a run's histograms over steps into `canvas`: returns the steps drawn. */
export function drawHeatmap(canvas: HTMLCanvasElement, steps: number[], hists: Hist[], width: number, height: number, color: string): void {
  const g = setupCanvas(canvas, width, height);
  const [lo, hi] = range(hists);
  const pw = Math.max(1, Math.floor(width - PAD.left - PAD.right));
  const ph = Math.max(1, Math.floor(height - PAD.top - PAD.bottom));
  const cols = hists.map((hst) => rebin(hst, lo, hi, ROWS));
  const s0 = steps[0];
  const s1 = steps[steps.length - 1];
  const off = document.createElement("canvas");
  off.width = pw;
  off.height = ROWS;
  const og = off.getContext("2d")!;
  const img = og.createImageData(pw, ROWS);
  const n = parseInt(color.startsWith("#") && color.length === 7 ? color.slice(1) : "1f77b4", 16);
  const [cr, cg, cb] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  for (let px = 0; px < pw; px++) {
    const at = steps.length === 1 ? 0 : Math.max(0, floorIndex(steps, s0 + ((px + 0.5) / pw) * (s1 - s0)));
    const col = cols[at];
    for (let r = 0; r < ROWS; r++) {
      const v = col[r];
      if (!v) continue;
      const i = ((ROWS - 1 - r) * pw + px) * 4;
      img.data[i] = cr;
      img.data[i + 1] = cg;
      img.data[i + 2] = cb;
      img.data[i + 3] = Math.round(40 + 215 * v);
    }
  }
  og.putImageData(img, 0, 0);
  g.imageSmoothingEnabled = false;
  g.fillStyle = "#fafbfc";
  g.fillRect(PAD.left, PAD.top, pw, ph);
  g.drawImage(off, PAD.left, PAD.top, pw, ph);
  g.strokeStyle = "#d7dce3";
  g.strokeRect(PAD.left + 0.5, PAD.top + 0.5, pw - 1, ph - 1);
  yAxis(g, lo, hi, PAD.top, PAD.top + ph);
  xAxis(g, s0, s1 === s0 ? s0 + 1 : s1, PAD.left, PAD.left + pw, PAD.top + ph, true);
  canvas.dataset.range = JSON.stringify([lo, hi]);
  canvas.dataset.steps = JSON.stringify([s0, s1]);
  canvas.dataset.plot = JSON.stringify([PAD.left, PAD.top, pw, ph]);
}

/** One step's histogram of each run, bars over each other. */
export function drawStep(canvas: HTMLCanvasElement, runs: { color: string; hist: Hist }[], width: number, height: number): void {
  const g = setupCanvas(canvas, width, height);
  const [lo, hi] = range(runs.map((r) => r.hist));
  const max = Math.max(1, ...runs.flatMap((r) => r.hist.counts));
  const pw = Math.max(1, width - PAD.left - PAD.right);
  const ph = Math.max(1, height - PAD.top - PAD.bottom);
  const x = (v: number) => PAD.left + ((v - lo) / (hi - lo)) * pw;
  g.strokeStyle = "#d7dce3";
  g.strokeRect(PAD.left + 0.5, PAD.top + 0.5, pw - 1, ph - 1);
  g.globalAlpha = runs.length > 1 ? 0.55 : 0.85;
  for (const r of runs) {
    g.fillStyle = r.color;
    r.hist.counts.forEach((c, b) => {
      if (!c) return;
      const x0 = x(r.hist.edges[b]);
      const x1 = x(r.hist.edges[b + 1]);
      const bh = (c / max) * ph;
      g.fillRect(x0, PAD.top + ph - bh, Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0)), bh);
    });
  }
  g.globalAlpha = 1;
  yAxis(g, 0, max, PAD.top, PAD.top + ph);
  xAxis(g, lo, hi, PAD.left, PAD.left + pw, PAD.top + ph, false);
  canvas.dataset.range = JSON.stringify([lo, hi]);
  canvas.dataset.max = String(max);
}

class HistogramPanel implements PanelInstance {
  readonly el: HTMLElement;
  private body: HTMLElement;
  private slider: StepSlider;
  private steps: KeySteps;
  private gen = 0;
  private shown: ShownRun[] = [];
  private modeBtns: HTMLButtonElement[];

  constructor(
    private ctx: PanelContext,
    private spec: PanelSpec,
  ) {
    const key = String(spec.config.key ?? "");
    this.steps = new KeySteps(ctx.entity, ctx.project, key);
    this.slider = new StepSlider(key, () => void this.drawStepView());
    this.modeBtns = (["heatmap", "step"] as const).map((m) => {
      const b = h("button.small", { type: "button", "data-mode": m, "aria-pressed": "false" }, m === "heatmap" ? "Over steps" : "One step");
      b.addEventListener("click", () => this.setMode(m));
      return b;
    });
    this.body = h("div.hist-body");
    this.el = h("div.hist-panel.media-panel", { "data-media": "histogram" }, h("div.hist-modes", { role: "group", "aria-label": "Histogram view" }, ...this.modeBtns), this.slider.el, this.body);
  }

  private mode(): "heatmap" | "step" {
    return this.spec.config.mode === "step" ? "step" : "heatmap";
  }

  private setMode(m: "heatmap" | "step", step?: number): void {
    if (m === "heatmap") delete this.spec.config.mode;
    else this.spec.config.mode = m;
    this.ctx.save(this.spec.config);
    if (step !== undefined) this.slider.set(this.steps.all, step);
    void this.redraw();
  }

  private width(): number {
    return Math.max(160, this.el.clientWidth || this.el.parentElement?.clientWidth || 400);
  }

  async update(reason: string): Promise<void> {
    if (reason !== "size") {
      const max = Number(this.spec.config.maxRuns) || MAX_RUNS;
      this.shown = this.ctx.runs().slice(0, max);
      await this.steps.load(this.shown.map((r) => r.run.run_id));
      this.slider.set(this.steps.all);
    }
    await this.redraw();
  }

  private async redraw(): Promise<void> {
    const m = this.mode();
    this.el.dataset.mode = m;
    this.modeBtns.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === m)));
    if (m === "step") {
      this.slider.el.hidden = this.steps.all.length <= 1;
      await this.drawStepView();
    } else {
      this.slider.el.hidden = true;
      await this.drawHeatmaps();
    }
  }

  private async drawHeatmaps(): Promise<void> {
    const gen = ++this.gen;
    const started = performance.now();
    const runs = this.shown.filter((r) => this.steps.byRun.has(r.run.run_id));
    const samples = Number(this.spec.config.samples) || 1000;
    const got = runs.length ? await loggedValues(this.ctx.entity, this.ctx.project, String(this.spec.config.key), runs.map((r) => r.run.run_id), samples) : {};
    if (gen !== this.gen) return;
    const width = this.width();
    const each = Math.max(90, Math.floor((this.spec.h - 30) / Math.max(1, runs.length)) - (runs.length > 1 ? 18 : 0));
    const out: HTMLElement[] = [];
    for (const r of runs) {
      const v = got[r.run.run_id];
      if (!v) continue;
      const steps: number[] = [];
      const hists: Hist[] = [];
      v.values.forEach((x, i) => {
        const hst = asHist(x);
        if (hst) {
          steps.push(v.steps[i]);
          hists.push(hst);
        }
      });
      if (!hists.length) continue;
      const canvas = h("canvas.hist-heatmap", { "data-run": r.run.run_id, "data-count": hists.length, "data-total": v.total, role: "img", "aria-label": `Histograms of ${r.run.name} over steps ${steps[0]} to ${steps[steps.length - 1]}` });
      canvas.title = "Click a step to see its histogram";
      drawHeatmap(canvas, steps, hists, width, each, r.color);
      canvas.addEventListener("click", (e) => {
        const [px, , pw] = JSON.parse(canvas.dataset.plot!) as number[];
        const rect = canvas.getBoundingClientRect();
        const frac = Math.min(1, Math.max(0, (e.clientX - rect.left - px) / pw));
        const step = steps[0] + frac * (steps[steps.length - 1] - steps[0]);
        this.setMode("step", steps[Math.max(0, floorIndex(steps, step))]);
      });
      out.push(h("div.hist-run", { "data-run": r.run.run_id }, runs.length > 1 ? h("div.hist-run-head", null, h("i.swatch", { style: `background:${r.color}` }), r.run.name, v.thinned ? h("span.muted", null, ` (${hists.length} of ${v.total} steps)`) : null) : null, canvas));
    }
    this.body.replaceChildren(...(out.length ? out : [h("p.muted", null, `No visible run logged ${this.spec.config.key}.`)]));
    this.el.dataset.drawMs = String(Math.round(performance.now() - started));
    this.el.classList.add("drawn");
  }

  private async drawStepView(): Promise<void> {
    const gen = ++this.gen;
    const step = this.slider.value();
    const ids = this.shown.map((r) => r.run.run_id).filter((id) => this.steps.byRun.has(id));
    const values = await this.steps.at(step, ids);
    if (gen !== this.gen) return;
    const runs = this.shown.flatMap((r) => {
      const hist = asHist(values.get(r.run.run_id)?.value);
      return hist ? [{ color: r.color, hist, run: r }] : [];
    });
    if (!runs.length) {
      this.body.replaceChildren(h("p.muted", null, "No histogram at this step."));
      return;
    }
    const canvas = h("canvas.hist-step", { role: "img", "aria-label": `Histogram at step ${step}`, "data-step": step });
    drawStep(canvas, runs, this.width(), Math.max(100, this.spec.h - 60));
    const legend = runs.length > 1 ? h("div.legend-items", null, runs.map((r) => h("span.legend-item", null, h("i.swatch", { style: `background:${r.color}` }), `${r.run.run.name} (step ${values.get(r.run.run.run_id)!.step})`))) : null;
    const total = runs[0].hist.counts.reduce((a, b) => a + b, 0);
    this.body.replaceChildren(canvas, legend ?? h("div.muted.media-meta", null, `${fmtNumber(total)} values in ${runs[0].hist.counts.length} bins`));
    this.el.dataset.step = String(step);
    this.el.classList.add("drawn");
  }

  destroy(): void {
    this.gen++;
  }
}

export const histogramPanel: PanelKind = {
  kind: "histogram",
  label: "Histogram (over steps, one step)",
  pick: "metric",
  defaults(_ctx: PanelContext, first?: string): Doc {
    return { key: first ?? "" };
  },
  title(spec: PanelSpec): string {
    return String(spec.config.key || "Histogram");
  },
  settings(ctx: PanelContext): SettingField[] {
    return [
      { name: "key", label: "Key", type: "select", options: ctx.metrics().map((m) => [m, m]) },
      { name: "mode", label: "View", type: "select", options: [["", "over steps (heat map)"], ["step", "one step"]] },
      { name: "samples", label: "Steps drawn at most (default 1000)", type: "number", min: 10, max: 10000, step: 10 },
      { name: "maxRuns", label: `Runs shown at most (default ${MAX_RUNS})`, type: "number", min: 1, max: 100, step: 1 },
    ];
  },
  create(ctx: PanelContext, spec: PanelSpec): PanelInstance {
    return new HistogramPanel(ctx, spec);
  },
  auto(metric: string, sample: Json | undefined): Doc | null {
    return mediaKind(sample) === "histogram" ? { key: metric } : null;
  },
};
