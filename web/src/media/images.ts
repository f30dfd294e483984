// Images as W&B stores them (docs/media.md): one `image-file` or an `images/separated` list,
// each with a caption and optional overlays: masks (an 8-bit PNG of class ids with
// `class_labels`) and boxes (a `boxes2D` JSON file of `box_data` and `class_labels`), drawn
// over the picture and switched on and off per layer and per class (`Overlays`).

import type { Json } from "../api";
import { PALETTE } from "../colors";
import { h } from "../util";
import { asDoc, fileBlob, fileJson, fileSrc, loaded } from "./data";

export interface LayerRef {
  path: string;
  class_labels?: Record<string, string>;
}

export interface ImageItem {
  path: string;
  caption?: string;
  width?: number;
  height?: number;
  masks: Record<string, LayerRef>;
  boxes: Record<string, LayerRef>;
}

function layers(v: Json | undefined): Record<string, LayerRef> {
  const out: Record<string, LayerRef> = {};
  const d = asDoc(v);
  if (!d) return out;
  for (const [name, ref] of Object.entries(d)) {
    const r = asDoc(ref);
    if (r && typeof r.path === "string") out[name] = { path: r.path, class_labels: (asDoc(r.class_labels) as Record<string, string> | null) ?? undefined };
  }
  return out;
}

/** The images of one logged value (none for anything else). */
export function imageItems(v: Json | undefined): ImageItem[] {
  const d = asDoc(v);
  if (!d) return [];
  if (d._type === "image-file" && typeof d.path === "string") {
    return [{ path: d.path, caption: typeof d.caption === "string" ? d.caption : undefined, width: Number(d.width) || undefined, height: Number(d.height) || undefined, masks: layers(d.masks), boxes: layers(d.boxes) }];
  }
  if (d._type === "images/separated" && Array.isArray(d.filenames)) {
    const caps = Array.isArray(d.captions) ? d.captions : [];
    const masks = Array.isArray(d.all_masks) ? d.all_masks : [];
    const boxes = Array.isArray(d.all_boxes) ? d.all_boxes : [];
    return d.filenames.map((p, i) => ({
      path: typeof p === "string" ? p : String(asDoc(p)?.path ?? ""),
      caption: typeof caps[i] === "string" && caps[i] ? (caps[i] as string) : undefined,
      width: Number(d.width) || undefined,
      height: Number(d.height) || undefined,
      masks: layers(masks[i]),
      boxes: layers(boxes[i]),
    }));
  }
  return [];
}

/** A class's colour: by its id (the same class has the same colour in every image). */
export function classColor(id: number): string {
  return PALETTE[((id % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

function rgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

interface BoxData {
  position: { minX?: number; maxX?: number; minY?: number; maxY?: number; middle?: [number, number]; width?: number; height?: number };
  class_id?: number;
  box_caption?: string;
  domain?: string;
  scores?: Record<string, number>;
}

interface BoxesFile {
  box_data: BoxData[];
  class_labels?: Record<string, string>;
}

/** Which overlay layers and classes are shown, with their legend (one per panel). */
export class Overlays {
  readonly el: HTMLElement;
  /** "layer" (the whole layer) or "layer/classId" switched off */
  readonly off: Set<string>;
  private classes = new Map<string, { kind: "mask" | "boxes"; labels: Map<string, string> }>();
  private listeners = new Set<() => void>();

  constructor(off: string[], private onSave: (off: string[]) => void) {
    this.off = new Set(off);
    this.el = h("div.media-legend", { role: "group", "aria-label": "Overlays" });
    this.el.hidden = true;
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  shown(layer: string, classId?: number | string): boolean {
    if (this.off.has(layer)) return false;
    return classId === undefined || !this.off.has(`${layer}/${classId}`);
  }

  /** Classes seen in a layer (their legend entries). */
  learn(layer: string, kind: "mask" | "boxes", labels: Record<string, string> | undefined, ids?: Iterable<number>): void {
    let entry = this.classes.get(layer);
    if (!entry) this.classes.set(layer, (entry = { kind, labels: new Map() }));
    const before = entry.labels.size;
    for (const [id, name] of Object.entries(labels ?? {})) entry.labels.set(id, name);
    for (const id of ids ?? []) if (!entry.labels.has(String(id))) entry.labels.set(String(id), `class_${id}`);
    if (entry.labels.size !== before || !this.el.querySelector(`[data-layer="${CSS.escape(layer)}"]`)) this.draw();
  }

  reset(): void {
    this.classes.clear();
    this.draw();
  }

  private toggle(name: string, on: boolean): void {
    if (on) this.off.delete(name);
    else this.off.add(name);
    this.onSave([...this.off]);
    this.draw();
    for (const fn of this.listeners) fn();
  }

  private draw(): void {
    const groups = [...this.classes.entries()].sort(([a], [b]) => a.localeCompare(b));
    this.el.hidden = !groups.length;
    this.el.replaceChildren(
      ...groups.map(([layer, { kind, labels }]) => {
        const box = h("input", { type: "checkbox", checked: this.shown(layer), "aria-label": `Show ${kind} ${layer}` });
        box.addEventListener("change", () => this.toggle(layer, box.checked));
        const ids = [...labels.keys()].sort((a, b) => Number(a) - Number(b));
        return h(
          "div.media-layer",
          { "data-layer": layer, "data-kind": kind },
          h("label.media-layer-name", null, box, ` ${kind === "mask" ? "mask" : "boxes"} ${layer}`),
          ...ids.map((id) => {
            const c = h("input", { type: "checkbox", checked: !this.off.has(`${layer}/${id}`), "aria-label": `Show ${labels.get(id)} in ${layer}` });
            c.addEventListener("change", () => this.toggle(`${layer}/${id}`, c.checked));
            return h("label.media-class", { "data-class": id }, c, h("i.swatch", { style: `background:${classColor(Number(id))}` }), labels.get(id)!);
          }),
        );
      }),
    );
  }
}

// class ids of masks, by path (read from the PNG's pixels once)
const maskIds = new Map<string, Promise<{ w: number; h: number; ids: Uint8Array }>>();

async function readMask(entity: string, project: string, runId: string, path: string): Promise<{ w: number; h: number; ids: Uint8Array }> {
  const key = `${runId}\u0000${path}`;
  let got = maskIds.get(key);
  if (!got) {
    got = (async () => {
      const blob = await fileBlob(entity, project, runId, path);
      const bmp = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
      const c = document.createElement("canvas");
      c.width = bmp.width;
      c.height = bmp.height;
      const g = c.getContext("2d", { willReadFrequently: true })!;
      g.drawImage(bmp, 0, 0);
      const px = g.getImageData(0, 0, bmp.width, bmp.height).data;
      const ids = new Uint8Array(bmp.width * bmp.height);
      for (let i = 0; i < ids.length; i++) ids[i] = px[i * 4];
      bmp.close();
      return { w: c.width, h: c.height, ids };
    })();
    got.catch(() => maskIds.delete(key));
    if (maskIds.size > 2000) maskIds.delete(maskIds.keys().next().value as string);
    maskIds.set(key, got);
  }
  return got;
}

function paintMask(canvas: HTMLCanvasElement, layer: string, m: { w: number; h: number; ids: Uint8Array }, overlays: Overlays): void {
  canvas.width = m.w;
  canvas.height = m.h;
  const g = canvas.getContext("2d")!;
  const img = g.createImageData(m.w, m.h);
  const colors = new Map<number, [number, number, number] | null>();
  for (let i = 0; i < m.ids.length; i++) {
    const id = m.ids[i];
    let c = colors.get(id);
    if (c === undefined) colors.set(id, (c = overlays.shown(layer, id) ? rgb(classColor(id)) : null));
    if (!c) continue;
    img.data[i * 4] = c[0];
    img.data[i * 4 + 1] = c[1];
    img.data[i * 4 + 2] = c[2];
    img.data[i * 4 + 3] = 128;
  }
  g.putImageData(img, 0, 0);
  canvas.hidden = !overlays.shown(layer);
}

function paintBoxes(canvas: HTMLCanvasElement, frame: HTMLElement, layer: string, file: BoxesFile, nw: number, nh: number, overlays: Overlays): void {
  const dpr = window.devicePixelRatio || 1;
  const cw = Math.max(1, frame.clientWidth);
  const ch = Math.max(1, frame.clientHeight);
  canvas.width = Math.round(cw * dpr);
  canvas.height = Math.round(ch * dpr);
  const g = canvas.getContext("2d")!;
  g.scale(dpr, dpr);
  g.lineWidth = 2;
  g.font = "11px system-ui, sans-serif";
  g.textBaseline = "top";
  let drawn = 0;
  for (const b of file.box_data ?? []) {
    const id = Number(b.class_id ?? 0);
    if (!overlays.shown(layer, id)) continue;
    const p = b.position ?? {};
    let x0: number, x1: number, y0: number, y1: number;
    if (p.middle) {
      const [mx, my] = p.middle;
      x0 = mx - (p.width ?? 0) / 2;
      x1 = mx + (p.width ?? 0) / 2;
      y0 = my - (p.height ?? 0) / 2;
      y1 = my + (p.height ?? 0) / 2;
    } else {
      x0 = p.minX ?? 0;
      x1 = p.maxX ?? 0;
      y0 = p.minY ?? 0;
      y1 = p.maxY ?? 0;
    }
    const sx = b.domain === "pixel" ? cw / nw : cw;
    const sy = b.domain === "pixel" ? ch / nh : ch;
    const color = classColor(id);
    g.strokeStyle = color;
    g.strokeRect(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
    const label = b.box_caption ?? file.class_labels?.[String(id)] ?? `class_${id}`;
    if (label) {
      const tw = g.measureText(label).width + 6;
      g.fillStyle = color;
      g.fillRect(x0 * sx, y0 * sy, tw, 14);
      g.fillStyle = "#fff";
      g.fillText(label, x0 * sx + 3, y0 * sy + 1);
    }
    drawn++;
  }
  canvas.dataset.drawn = String(drawn);
  canvas.hidden = !overlays.shown(layer);
}

/** One image with its caption and overlays; resolves when the picture is decoded. */
export function imageFigure(entity: string, project: string, runId: string, item: ImageItem, overlays: Overlays, index: number): { el: HTMLElement; ready: Promise<void>; dispose: () => void } {
  const img = h("img.media-img", { alt: item.caption ?? item.path.split("/").pop() ?? "image", decoding: "async", draggable: "false" });
  if (item.width && item.height) {
    img.width = item.width;
    img.height = item.height;
    if (item.width < 64 || item.height < 64) img.classList.add("pixelated");
  }
  const frame = h("div.media-frame", null, img);
  const fig = h("figure.media-item", { "data-index": index, "data-path": item.path }, frame, item.caption ? h("figcaption.media-caption", null, item.caption) : null);
  const repaint: (() => void)[] = [];
  const ready = (async () => {
    img.src = await fileSrc(entity, project, runId, item.path);
    await loaded(img);
    fig.dataset.loaded = "true";
    const nw = img.naturalWidth || item.width || 1;
    const nh = img.naturalHeight || item.height || 1;
    const tasks: Promise<void>[] = [];
    for (const [layer, ref] of Object.entries(item.masks)) {
      const canvas = h("canvas.media-mask", { "data-layer": layer, "aria-hidden": "true" });
      frame.append(canvas);
      tasks.push(
        readMask(entity, project, runId, ref.path).then((m) => {
          overlays.learn(layer, "mask", ref.class_labels, new Set(m.ids));
          paintMask(canvas, layer, m, overlays);
          repaint.push(() => paintMask(canvas, layer, m, overlays));
        }),
      );
    }
    for (const [layer, ref] of Object.entries(item.boxes)) {
      const canvas = h("canvas.media-boxes", { "data-layer": layer, "aria-hidden": "true" });
      frame.append(canvas);
      tasks.push(
        fileJson<BoxesFile>(entity, project, runId, ref.path).then((file) => {
          overlays.learn(layer, "boxes", file.class_labels, (file.box_data ?? []).map((b) => Number(b.class_id ?? 0)));
          const draw = () => paintBoxes(canvas, frame, layer, file, nw, nh, overlays);
          canvas.dataset.boxes = String(file.box_data?.length ?? 0);
          // drawn at the frame's size: once it is laid out
          requestAnimationFrame(draw);
          repaint.push(draw);
        }),
      );
    }
    await Promise.all(tasks);
  })();
  const off = overlays.onChange(() => repaint.forEach((f) => f()));
  return { el: fig, ready, dispose: off };
}

/** Start loading a step's pictures before the slider gets there. */
export function preloadImages(entity: string, project: string, runId: string, value: Json | undefined): void {
  for (const item of imageItems(value).slice(0, 32)) {
    void fileSrc(entity, project, runId, item.path).then((src) => {
      const im = new Image();
      im.decoding = "async";
      im.src = src;
    });
  }
}

