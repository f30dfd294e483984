// Audio, video, HTML and plotly values (docs/media.md): one reference or W&B's list forms
// (`audio`, `videos`, `html` with the references in the field of that name).
//
// User HTML is shown only in <iframe sandbox="allow-scripts" srcdoc=...> (never
// allow-same-origin): its document runs in an opaque origin, so its scripts cannot read the
// dashboard's DOM, cookies or local storage (where the API key is), and whatever they fetch
// from the server goes without the key.
//
// Plotly figures are drawn by plotly.js (the npm package plotly.js-dist-min, bundled with the
// dashboard, never from a CDN), loaded on first use as a chunk of its own: the main bundle does
// not grow by plotly's 4.6 MB.

import type { Json } from "../api";
import { h } from "../util";
import { asDoc, fileJson, fileSrc, fileText } from "./data";

export interface FileItem {
  path: string;
  caption?: string;
  doc: Record<string, Json>;
}

/** The files of a value: one reference, or the list under `field` (audio, videos, html). */
export function fileItems(v: Json | undefined, field: string): FileItem[] {
  const d = asDoc(v);
  if (!d) return [];
  if (typeof d.path === "string") return [{ path: d.path, caption: typeof d.caption === "string" ? d.caption : undefined, doc: d }];
  const list = Array.isArray(d[field]) ? (d[field] as Json[]) : [];
  const caps = Array.isArray(d.captions) ? d.captions : [];
  return list
    .map((r, i) => {
      const ref = asDoc(r);
      const path = ref && typeof ref.path === "string" ? ref.path : typeof r === "string" ? r : "";
      const cap = (ref && typeof ref.caption === "string" ? ref.caption : undefined) ?? (typeof caps[i] === "string" && caps[i] ? (caps[i] as string) : undefined);
      return { path, caption: cap, doc: ref ?? {} };
    })
    .filter((x) => x.path);
}

export interface Drawn {
  el: HTMLElement;
  ready: Promise<void>;
  dispose?: () => void;
}

function caption(text: string | undefined): HTMLElement | null {
  return text ? h("figcaption.media-caption", null, text) : null;
}

export function audioFigure(entity: string, project: string, runId: string, item: FileItem): Drawn {
  const audio = h("audio.media-audio", { controls: true, preload: "metadata" });
  const meta = [item.doc.duration !== undefined ? `${Number(item.doc.duration).toFixed(2)} s` : "", item.doc.sample_rate ? `${item.doc.sample_rate} Hz` : ""].filter(Boolean).join(" · ");
  const el = h("figure.media-item.media-audio-item", { "data-path": item.path }, audio, caption(item.caption), meta ? h("div.muted.media-meta", null, meta) : null);
  const ready = fileSrc(entity, project, runId, item.path).then((src) => {
    audio.src = src;
    el.dataset.loaded = "true";
  });
  return { el, ready };
}

export function videoFigure(entity: string, project: string, runId: string, item: FileItem): Drawn {
  const gif = item.path.toLowerCase().endsWith(".gif");
  const player = gif ? h("img.media-video.media-img", { alt: item.caption ?? "video" }) : h("video.media-video", { controls: true, loop: true, muted: true, playsinline: true, preload: "metadata" });
  const el = h("figure.media-item.media-video-item", { "data-path": item.path, "data-format": gif ? "gif" : item.path.split(".").pop() ?? "" }, h("div.media-frame", null, player), caption(item.caption));
  const ready = fileSrc(entity, project, runId, item.path).then(async (src) => {
    player.src = src;
    if (player instanceof HTMLImageElement) await player.decode().catch(() => undefined);
    el.dataset.loaded = "true";
  });
  return { el, ready };
}

export function htmlFigure(entity: string, project: string, runId: string, item: FileItem, height: number): Drawn {
  // allow-scripts and nothing else: an opaque origin, no top navigation, no popups, no forms
  const frame = h("iframe.media-html", { sandbox: "allow-scripts", referrerpolicy: "no-referrer", title: item.caption ?? "HTML", style: `height:${Math.max(80, height)}px` });
  const el = h("figure.media-item.media-html-item", { "data-path": item.path }, frame, caption(item.caption));
  const ready = fileText(entity, project, runId, item.path).then((text) => {
    frame.srcdoc = text;
    el.dataset.loaded = "true";
  });
  return { el, ready };
}

interface PlotlyLib {
  newPlot(el: HTMLElement, data: unknown, layout: unknown, config: unknown): Promise<unknown>;
  purge(el: HTMLElement): void;
  Plots: { resize(el: HTMLElement): void };
}

let plotly: Promise<PlotlyLib> | null = null;
/** plotly.js, loaded the first time a plotly panel draws. */
export function loadPlotly(): Promise<PlotlyLib> {
  plotly ??= import("plotly.js-dist-min").then((m) => ((m as { default?: PlotlyLib }).default ?? (m as unknown as PlotlyLib)));
  return plotly;
}

export function plotlyFigure(entity: string, project: string, runId: string, item: FileItem, height: number): Drawn {
  const div = h("div.media-plotly", { style: `height:${Math.max(120, height)}px` });
  const el = h("figure.media-item.media-plotly-item", { "data-path": item.path }, div, caption(item.caption));
  let lib: PlotlyLib | null = null;
  const ready = Promise.all([loadPlotly(), fileJson<{ data?: unknown; layout?: Record<string, unknown> }>(entity, project, runId, item.path)]).then(async ([P, fig]) => {
    lib = P;
    const layout = { ...(fig.layout ?? {}), autosize: true, height: Math.max(120, height) };
    delete (layout as Record<string, unknown>).width;
    // plotly's default margins (80 px) leave a panel's plot no room
    if (!fig.layout?.margin) (layout as Record<string, unknown>).margin = { l: 48, r: 12, t: fig.layout?.title ? 36 : 12, b: 36 };
    await P.newPlot(div, fig.data ?? [], layout, { responsive: true, displaylogo: false });
    el.dataset.loaded = "true";
    el.dataset.traces = String(Array.isArray(fig.data) ? fig.data.length : 0);
  });
  return { el, ready, dispose: () => lib?.purge(div) };
}
