// What the media panels read (docs/media.md, "For the dashboard: the URLs"): the steps at which
// runs logged a key and their values there (POST /projects/{e}/{p}/steps and /values, many
// runs in one request), and the run files the references name (GET /runs/.../files/{path}).
//
// A file is shown through its plain URL when the dashboard has no API key (runyard ui: the
// browser caches it; the names are content-addressed); with a key, it is fetched with the key
// and shown through an object URL (an <img src> cannot send a Bearer header).

import { ApiError, apiKey, fileUrl, post, projectPath, type Doc, type Json } from "../api";

/** The media kinds the panels draw, by the `_type` of a history value. */
export type MediaKind = "images" | "histogram" | "table" | "audio" | "video" | "html" | "plotly";

const KINDS: Record<string, MediaKind> = {
  "image-file": "images",
  "images/separated": "images",
  histogram: "histogram",
  "table-file": "table",
  "partitioned-table": "table",
  "audio-file": "audio",
  audio: "audio",
  "video-file": "video",
  videos: "video",
  "html-file": "html",
  html: "html",
  "plotly-file": "plotly",
};

export function asDoc(v: Json | undefined): Doc | null {
  return v && typeof v === "object" && !Array.isArray(v) ? v : null;
}

/** The media kind of a logged value (its summary value, a history value), or null. */
export function mediaKind(v: Json | undefined): MediaKind | null {
  const d = asDoc(v);
  const t = d?._type;
  return typeof t === "string" ? KINDS[t] ?? null : null;
}

export interface RunValues {
  steps: number[];
  values: Json[];
  total: number;
  thinned: boolean;
}

/** The steps at which each run logged `key` (ascending). */
export async function loggedSteps(entity: string, project: string, key: string, runs: string[]): Promise<Record<string, number[]>> {
  if (!runs.length) return {};
  const res = await post<{ steps: Record<string, number[]> }>(projectPath(entity, project) + "/steps", { key, runs });
  return res.steps;
}

/** The values runs logged under `key` from `min` to `max` (at most `samples` per run, evenly
 * spread, the first and last kept). At most 100 runs a request: more are asked in chunks. */
export async function loggedValues(entity: string, project: string, key: string, runs: string[], samples: number, min?: number, max?: number): Promise<Record<string, RunValues>> {
  const out: Record<string, RunValues> = {};
  for (let i = 0; i < runs.length; i += 100) {
    const chunk = runs.slice(i, i + 100);
    const n = Math.max(1, Math.min(10_000, samples, Math.floor(200_000 / chunk.length)));
    const res = await post<{ values: Record<string, RunValues> }>(projectPath(entity, project) + "/values", { key, runs: chunk, samples: n, min_step: min ?? null, max_step: max ?? null });
    Object.assign(out, res.values);
  }
  return out;
}

// -- files ------------------------------------------------------------------------------------

class Lru<V> {
  private map = new Map<string, V>();
  constructor(
    private cap: number,
    private evict?: (v: V) => void,
  ) {}
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  delete(k: string): void {
    this.map.delete(k);
  }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    while (this.map.size > this.cap) {
      const first = this.map.keys().next().value as string;
      const old = this.map.get(first)!;
      this.map.delete(first);
      this.evict?.(old);
    }
  }
}

async function fetchFile(url: string): Promise<Response> {
  const key = apiKey();
  const res = await fetch(url, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body?.error?.message) message = body.error.message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, `${url.split("/files/").pop()}: ${message}`);
  }
  return res;
}

const objectUrls = new Lru<Promise<string>>(3000, (p) => void p.then((u) => URL.revokeObjectURL(u)).catch(() => undefined));
const jsonFiles = new Lru<Promise<unknown>>(200);
const textFiles = new Lru<Promise<string>>(100);
const blobFiles = new Lru<Promise<Blob>>(400);

/** The URL an <img>/<audio>/<video> shows a run file from. */
export function fileSrc(entity: string, project: string, runId: string, path: string): Promise<string> {
  const url = fileUrl(entity, project, runId, path);
  if (!apiKey()) return Promise.resolve(url);
  let got = objectUrls.get(url);
  if (!got) {
    got = fetchFile(url).then(async (res) => URL.createObjectURL(await res.blob()));
    got.catch(() => objectUrls.delete(url));
    objectUrls.set(url, got);
  }
  return got;
}

/** A run file's bytes (masks: their pixels are read, not shown). */
export function fileBlob(entity: string, project: string, runId: string, path: string): Promise<Blob> {
  const url = fileUrl(entity, project, runId, path);
  let got = blobFiles.get(url);
  if (!got) {
    got = fetchFile(url).then((res) => res.blob());
    got.catch(() => blobFiles.delete(url)); // a failure is not kept: asked again next time
    blobFiles.set(url, got);
  }
  return got;
}

/** A run file as JSON (tables, boxes, plotly figures), kept for the next draw. */
export function fileJson<T = unknown>(entity: string, project: string, runId: string, path: string): Promise<T> {
  const url = fileUrl(entity, project, runId, path);
  let got = jsonFiles.get(url);
  if (!got) {
    got = fetchFile(url).then((res) => res.json());
    jsonFiles.set(url, got);
    got.catch(() => jsonFiles.delete(url));
  }
  return got as Promise<T>;
}

/** A run file as text (user HTML: shown only in a sandboxed frame). */
export function fileText(entity: string, project: string, runId: string, path: string): Promise<string> {
  const url = fileUrl(entity, project, runId, path);
  let got = textFiles.get(url);
  if (!got) {
    got = fetchFile(url).then((res) => res.text());
    got.catch(() => textFiles.delete(url));
    textFiles.set(url, got);
  }
  return got;
}

/** Wait for an <img> to have decoded its picture (or failed). */
export function loaded(img: HTMLImageElement): Promise<void> {
  if (img.complete && img.naturalWidth) return Promise.resolve();
  return img.decode().catch(() => undefined);
}
