// The dashboard's only way to the server: /api/v1 (docs/server-api.md), JSON with the
// non-finite float markers decoded, and an optional API key kept in this browser.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Doc = { [key: string]: Json };

export interface MetricDef {
  name: string;
  step_metric: string | null;
  summary: string[];
  goal: string | null;
  hidden: boolean;
}

export interface Run {
  pk: number;
  entity: string;
  project: string;
  run_id: string;
  name: string;
  group: string | null;
  job_type: string | null;
  tags: string[];
  notes: string | null;
  state: string;
  config: Doc;
  summary: Doc;
  meta: Doc;
  sweep_id: string | null;
  host: string | null;
  created_at: number;
  updated_at: number;
  heartbeat_at: number;
  finished_at: number | null;
  runtime: number;
  last_step: number;
  exit_code: number | null;
  failure: string | null;
  sweep_params: Doc | null;
  agent_id: string | null;
  metric_defs: MetricDef[];
}

export interface Project {
  entity: string;
  project: string;
  runs: number;
}

export interface Series {
  key: string;
  steps: number[];
  values: number[];
  total: number;
  downsampled: boolean;
}

export interface XSeries extends Series {
  x: string;
  xs: number[];
}

export interface Sweep {
  id: string;
  entity: string;
  project: string;
  name: string | null;
  description: string | null;
  method: string;
  state: string;
  config: Doc;
  seed: number;
  run_count: number;
  created_at: number;
  updated_at: number;
}

export interface Trial {
  run_id: string;
  name: string;
  state: string;
  params: Doc;
  summary: Doc;
  agent_id: string | null;
  created_at: number;
  heartbeat_at: number;
  failure: string | null;
}

export interface Agent {
  id: string;
  sweep_id: string;
  host: string | null;
  pid: number | null;
  state: string;
  current_run_id: string | null;
  runs_done: number;
  created_at: number;
  heartbeat_at: number;
}

/** GET /sweeps/{id}/front: a multi-objective sweep's Pareto front. */
export interface Front {
  metrics: { name: string; goal: string }[];
  n: number;
  reference: number[] | null;
  hypervolume: number | null;
  front: { run_id: string; name: string; state: string; values: number[]; params: Doc }[];
}

export interface Importance {
  metric: string;
  goal: string;
  method: string;
  n: number;
  params: { name: string; importance: number | null; correlation: number | null; kind: string }[];
}

export interface ProjectKeys {
  config: string[];
  summary: string[];
  /** every metric any run of the project logged (newer servers) */
  metrics?: string[];
}

/** One run's series in a batched answer (POST /projects/{e}/{p}/series). */
export interface RunSeries {
  steps: number[];
  values: number[];
  /** the x value of each point (absent when x is _step) */
  xs?: number[];
  total: number;
  downsampled: boolean;
}

export interface SeriesBatch {
  x: string;
  series: Record<string, Record<string, RunSeries>>;
}

export interface SavedWorkspace {
  scope: "project" | "user" | null;
  user?: string;
  doc: Doc | null;
  updated_at?: number;
}

const BASE = "/api/v1";
const KEY_STORAGE = "runyard.apiKey";

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export function apiKey(): string | null {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function setApiKey(key: string | null): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

/** Replace {"__f__": "nan"|"inf"|"-inf"} markers (runyard._json) by numbers. */
export function decode(value: unknown): unknown {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (v !== null && typeof v === "object") value[i] = decode(v);
    }
    return value;
  }
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const marker = obj["__f__"];
    if (typeof marker === "string" && Object.keys(obj).length === 1) {
      return marker === "nan" ? NaN : marker === "inf" ? Infinity : -Infinity;
    }
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (v !== null && typeof v === "object") obj[k] = decode(v);
    }
  }
  return value;
}

function headers(extra?: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = { Accept: "application/json", ...(extra ?? {}) };
  const key = apiKey();
  if (key) h["Authorization"] = `Bearer ${key}`;
  return h;
}

async function raise(res: Response): Promise<never> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) message = body.error.message;
    else if (body && body.detail) message = JSON.stringify(body.detail);
  } catch {
    /* not JSON */
  }
  throw new ApiError(res.status, message);
}

export async function get<T>(path: string, params?: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
  const url = new URL(BASE + path, location.origin);
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined || v === null || v === "") continue;
    url.searchParams.set(k, String(v));
  }
  const res = await fetch(url, { headers: headers(), signal });
  if (!res.ok) await raise(res);
  return decode(await res.json()) as T;
}

export async function post<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(BASE + path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!res.ok) await raise(res);
  return decode(await res.json()) as T;
}

async function send<T>(method: string, path: string, body?: unknown, params?: Record<string, unknown>): Promise<T> {
  const url = new URL(BASE + path, location.origin);
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  const res = await fetch(url, {
    method,
    headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) await raise(res);
  return decode(await res.json()) as T;
}

export function put<T>(path: string, body: unknown, params?: Record<string, unknown>): Promise<T> {
  return send<T>("PUT", path, body, params);
}

export function del<T>(path: string, params?: Record<string, unknown>): Promise<T> {
  return send<T>("DELETE", path, undefined, params);
}

export function projectPath(entity: string, project: string): string {
  return `/projects/${encodeURIComponent(entity)}/${encodeURIComponent(project)}`;
}

/** Many runs' series of some metrics in one request (the server downsamples each run). */
export function seriesBatch(
  entity: string,
  project: string,
  body: { keys: string[]; runs: string[]; samples: number; x: string; since?: Record<string, number> },
): Promise<SeriesBatch> {
  return post<SeriesBatch>(projectPath(entity, project) + "/series", body);
}

export async function getBlob(path: string): Promise<Blob> {
  const res = await fetch(BASE + path, { headers: headers() });
  if (!res.ok) await raise(res);
  return res.blob();
}

export function runPath(entity: string, project: string, runId: string): string {
  return `/runs/${encodeURIComponent(entity)}/${encodeURIComponent(project)}/${encodeURIComponent(runId)}`;
}

export function fileUrl(entity: string, project: string, runId: string, name: string): string {
  return BASE + runPath(entity, project, runId) + "/files/" + name.split("/").map(encodeURIComponent).join("/");
}

/** Run `tasks` with at most `limit` in flight (keeps a page with 100 charts from flooding). */
export async function pool<T>(tasks: (() => Promise<T>)[], limit = 6): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}

// -- run management (PATCH/DELETE /runs/{e}/{p}/{id}, POST .../state) ---------------------------

/** The fields of a run the dashboard edits; each given replaces the stored one (null clears notes). */
export interface RunUpdate {
  name?: string;
  tags?: string[];
  notes?: string | null;
}

/** DELETE /runs/{e}/{p}/{id}: what went (with `dry_run`: what would go). */
export interface RunDeletion {
  path: string;
  files: number;
  file_bytes: number;
  freed_bytes: number;
  history_rows: number;
  dry_run: boolean;
}

/** Change a run's name, tags or notes; the run after. */
export function updateRun(entity: string, project: string, runId: string, changes: RunUpdate): Promise<Run> {
  return send<Run>("PATCH", runPath(entity, project, runId), changes);
}

/** Delete a run and what it logged (`dryRun`: only say what would go). 409 while it runs. */
export function deleteRun(entity: string, project: string, runId: string, dryRun = false): Promise<RunDeletion> {
  return del<RunDeletion>(runPath(entity, project, runId), { dry_run: dryRun ? "true" : undefined });
}

/** Stop a live run as `runyard runs stop` does: it becomes `stopped` (only if it is still live);
 * its process learns it on its next check (`run.should_stop`, the wandb client's file stream). */
export function stopRun(entity: string, project: string, runId: string, failure: string): Promise<{ changed: boolean }> {
  return post<{ changed: boolean }>(runPath(entity, project, runId) + "/state", { state: "stopped", failure, only_if_running: true });
}
