// Media panels (W&B's media panel): images (with mask and box overlays), audio, video, HTML and
// plotly figures logged under one key, one row per visible run, with a step slider over the
// steps the runs logged it (each run shows its value at the slider's step, or its last before).
// The slider reads values in windows of steps (media/steps.ts) and the next step's pictures
// ahead, so moving it is a redraw from the browser's cache.

import type { Doc, Json } from "../api";
import { h } from "../util";
import { mediaKind, type MediaKind } from "../media/data";
import { imageFigure, imageItems, Overlays, preloadImages } from "../media/images";
import { audioFigure, fileItems, htmlFigure, plotlyFigure, videoFigure, type Drawn } from "../media/players";
import { KeySteps, StepSlider } from "../media/steps";
import type { PanelContext, PanelInstance, PanelKind, PanelSpec, SettingField, ShownRun } from "./types";

/** runs drawn by one media panel at most (W&B shows 10 by default) */
const DEFAULT_MAX_RUNS = 10;

export class MediaPanel implements PanelInstance {
  readonly el: HTMLElement;
  private rowsEl: HTMLElement;
  private slider: StepSlider;
  private steps: KeySteps;
  private overlays: Overlays;
  private gen = 0;
  private drawn: (() => void)[] = [];
  private shown: ShownRun[] = [];

  constructor(
    private ctx: PanelContext,
    private spec: PanelSpec,
    private kind: Exclude<MediaKind, "histogram" | "table">,
  ) {
    const key = String(spec.config.key ?? "");
    this.steps = new KeySteps(ctx.entity, ctx.project, key);
    this.slider = new StepSlider(key, (step) => void this.show(step));
    const off = Array.isArray(spec.config.off) ? spec.config.off.map(String) : [];
    this.overlays = new Overlays(off, (next) => {
      if (next.length) this.spec.config.off = next;
      else delete this.spec.config.off;
      this.ctx.save(this.spec.config);
    });
    this.rowsEl = h("div.media-rows");
    this.el = h("div.media-panel", { "data-media": kind }, this.slider.el, this.overlays.el, this.rowsEl);
  }

  private runs(): ShownRun[] {
    const max = Number(this.spec.config.maxRuns) || DEFAULT_MAX_RUNS;
    return this.ctx.runs().slice(0, Math.max(1, max));
  }

  async update(reason: string): Promise<void> {
    if (reason === "size") {
      this.drawn.forEach((f) => f());
      if (this.kind !== "images") await this.show(this.slider.value());
      return;
    }
    this.shown = this.runs();
    const ids = this.shown.map((r) => r.run.run_id);
    await this.steps.load(ids);
    const initial = typeof this.spec.config.step === "number" ? this.spec.config.step : undefined;
    this.slider.set(this.steps.all, initial);
    await this.show(this.slider.value());
  }

  /** Draw every run's value at the slider's `step`. */
  async show(step: number): Promise<void> {
    const gen = ++this.gen;
    const started = performance.now();
    this.el.dataset.wantStep = String(step);
    const ids = this.shown.map((r) => r.run.run_id).filter((id) => this.steps.byRun.has(id));
    const values = await this.steps.at(step, ids);
    if (gen !== this.gen) return;
    const rows: HTMLElement[] = [];
    const waits: Promise<void>[] = [];
    const disposers: (() => void)[] = [];
    const height = this.spec.h - 40;
    for (const r of this.shown) {
      const got = values.get(r.run.run_id);
      if (!got) continue;
      const items = this.draw(r.run.run_id, got.value, height);
      for (const d of items) {
        waits.push(d.ready.catch((err) => void d.el.replaceChildren(h("p.error", null, String(err instanceof Error ? err.message : err)))));
        if (d.dispose) disposers.push(d.dispose);
      }
      rows.push(
        h(
          "div.media-run",
          { "data-run": r.run.run_id, "data-step": got.step },
          h("div.media-run-head", null, h("i.swatch", { style: `background:${r.color}` }), h("span.media-run-name", null, r.run.name), h("span.muted", null, ` step ${got.step.toLocaleString()}`)),
          h("div.media-grid", { class: `media-grid-${this.kind}` }, items.length ? items.map((d) => d.el) : h("p.muted", null, "Nothing to show at this step.")),
        ),
      );
    }
    this.drawn.forEach((f) => f());
    this.drawn = disposers;
    if (!rows.length) rows.push(h("p.muted", null, ids.length ? "Loading…" : `No visible run logged ${this.spec.config.key}.`));
    this.rowsEl.replaceChildren(...rows);
    this.el.dataset.runs = String(values.size);
    await Promise.all(waits);
    if (gen !== this.gen) return;
    this.el.dataset.step = String(step);
    this.el.dataset.drawMs = String(Math.round(performance.now() - started));
    this.el.classList.add("drawn");
    // read ahead: the values of the next stops, and their pictures
    for (const s of this.slider.neighbours()) {
      this.steps.prefetch(s, ids);
      if (this.kind === "images") for (const id of ids) {
        const at = this.steps.stepOf(id, s);
        const v = at === null ? undefined : this.steps.cached(id, at);
        if (v !== undefined) preloadImages(this.ctx.entity, this.ctx.project, id, v);
      }
    }
  }

  private draw(runId: string, value: Json, height: number): Drawn[] {
    const { entity, project } = this.ctx;
    switch (this.kind) {
      case "images":
        return imageItems(value).map((item, i) => imageFigure(entity, project, runId, item, this.overlays, i));
      case "audio":
        return fileItems(value, "audio").map((item) => audioFigure(entity, project, runId, item));
      case "video":
        return fileItems(value, "videos").map((item) => videoFigure(entity, project, runId, item));
      case "html":
        return fileItems(value, "html").map((item) => htmlFigure(entity, project, runId, item, height));
      case "plotly":
        return fileItems(value, "plotly").map((item) => plotlyFigure(entity, project, runId, item, height));
    }
  }

  destroy(): void {
    this.gen++;
    this.drawn.forEach((f) => f());
  }
}

const LABELS: Record<string, string> = { images: "Images", audio: "Audio", video: "Video", html: "HTML", plotly: "Plotly chart" };

function mediaPanelKind(kind: Exclude<MediaKind, "histogram" | "table">): PanelKind {
  return {
    kind,
    label: `${LABELS[kind]} (media, step slider)`,
    pick: "metric",
    defaults(_ctx: PanelContext, first?: string): Doc {
      return { key: first ?? "" };
    },
    title(spec: PanelSpec): string {
      return String(spec.config.key || LABELS[kind]);
    },
    settings(ctx: PanelContext): SettingField[] {
      return [
        { name: "key", label: "Key", type: "select", options: ctx.metrics().map((m) => [m, m]) },
        { name: "maxRuns", label: `Runs shown at most (default ${DEFAULT_MAX_RUNS})`, type: "number", min: 1, max: 100, step: 1 },
      ];
    },
    create(ctx: PanelContext, spec: PanelSpec): PanelInstance {
      return new MediaPanel(ctx, spec, kind);
    },
    auto(metric: string, sample: Json | undefined): Doc | null {
      return mediaKind(sample) === kind ? { key: metric } : null;
    },
  };
}

export const imagesPanel = mediaPanelKind("images");
export const audioPanel = mediaPanelKind("audio");
export const videoPanel = mediaPanelKind("video");
export const htmlPanel = mediaPanelKind("html");
export const plotlyPanel = mediaPanelKind("plotly");
