// The workspace's series cache: many runs' series of a metric fetched in one request
// (POST /projects/{e}/{p}/series, the server downsamples each run), kept per (metric, x axis,
// samples), and grown in place while runs are running: `live()` asks, in one request per x
// axis, for the points after the last step each running run has, and appends them.

import { seriesBatch, type RunSeries } from "../api";

export interface Points {
  steps: number[];
  xs: number[];
  ys: number[];
  total: number;
  downsampled: boolean;
  /** the last step fetched (the next live update asks for later ones) */
  last: number;
}

const CHUNK = 1000;
const CONCURRENCY = 4;

function toPoints(s: RunSeries): Points {
  const xs = s.xs ?? s.steps.slice(); // its own array: live updates push to both
  return { steps: s.steps, xs, ys: s.values, total: s.total, downsampled: s.downsampled, last: s.steps.length ? s.steps[s.steps.length - 1] : -Infinity };
}

/** Thin `p` in place to about `samples` points the way the server downsamples: the first and
 * last point and, in each of (samples-2)/2 equal step ranges, the points with the smallest and
 * largest value (in step order). A chart of the thinned points keeps every spike. */
export function thin(p: Points, samples: number): void {
  const n = p.steps.length;
  const buckets = Math.max(1, Math.floor((samples - 2) / 2));
  if (n <= samples || n < 3) return;
  const first = p.steps[0];
  const span = p.steps[n - 1] - first + 1;
  const keep: number[] = [0];
  let b = -1;
  let lo = -1;
  let hi = -1;
  const flush = () => {
    if (lo < 0) return;
    if (lo === hi) keep.push(lo);
    else keep.push(Math.min(lo, hi), Math.max(lo, hi));
  };
  for (let i = 1; i < n - 1; i++) {
    const bi = Math.floor(((p.steps[i] - first) * buckets) / span);
    if (bi !== b) {
      flush();
      b = bi;
      lo = hi = i;
      continue;
    }
    if (p.ys[i] < p.ys[lo] || !(p.ys[lo] === p.ys[lo])) lo = i;
    if (p.ys[i] > p.ys[hi] || !(p.ys[hi] === p.ys[hi])) hi = i;
  }
  flush();
  keep.push(n - 1);
  p.steps = keep.map((i) => p.steps[i]);
  p.xs = keep.map((i) => p.xs[i]);
  p.ys = keep.map((i) => p.ys[i]);
  p.downsampled = true;
}

function comboKey(key: string, x: string, samples: number): string {
  return `${key}\u0000${x}\u0000${samples}`;
}

export class SeriesCache {
  private data = new Map<string, Map<string, Points>>();
  private pending = new Map<string, Promise<void>>();
  private active = 0;
  private queue: (() => void)[] = [];
  /** the runs whose cached series of a metric grew in the last live update (by metric) */
  private grownRuns = new Map<string, Set<string>>();
  /** the caches read (get, peek) since the last live update */
  private touched = new Set<string>();
  /** requests made and points received (the bench and tests read them) */
  readonly stats = { requests: 0, live: 0, points: 0 };

  constructor(
    private entity: string,
    private project: string,
  ) {}

  private async slot<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= CONCURRENCY) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }

  /** What is cached for `key` against `x` (no fetch). */
  peek(key: string, x: string, samples: number): Map<string, Points> | undefined {
    const ck = comboKey(key, x, samples);
    this.touched.add(ck);
    return this.data.get(ck);
  }

  /** Cached series of `key` against `x` for every one of `runIds`, at `samples` or else at
   * any other resolution (a filter change draws these at once, then the right ones); null
   * when a run has none. */
  peekAny(key: string, x: string, runIds: string[], samples: number): Map<string, Points> | null {
    const exact = this.data.get(comboKey(key, x, samples));
    const others = [...this.data.entries()].filter(([ck]) => ck.startsWith(`${key}\u0000${x}\u0000`)).map(([, m]) => m);
    const out = new Map<string, Points>();
    for (const id of runIds) {
      const p = exact?.get(id) ?? others.find((m) => m.has(id))?.get(id);
      if (!p) return null;
      out.set(id, p);
    }
    return out;
  }

  /** Requests under way (at any resolution) for those of `runIds` that no cache of `key`
   * against `x` has yet; null when a run has neither (a panel drawn early from another
   * resolution waits for these rather than for its own, slower request). */
  pendingAny(key: string, x: string, runIds: string[]): Promise<void> | null {
    const prefix = `${key}\u0000${x}\u0000`;
    const caches = [...this.data.entries()].filter(([ck]) => ck.startsWith(prefix));
    const waits = new Set<Promise<void>>();
    for (const id of runIds) {
      if (caches.some(([, m]) => m.has(id))) continue;
      const p = caches.map(([ck]) => this.pending.get(`${ck}\u0000${id}`)).find((w) => w !== undefined);
      if (!p) return null;
      waits.add(p);
    }
    return Promise.all(waits).then(() => undefined);
  }

  /** The series of `key` against `x` for `runIds`; only runs not cached yet are fetched. */
  async get(key: string, x: string, runIds: string[], samples: number): Promise<Map<string, Points>> {
    const ck = comboKey(key, x, samples);
    this.touched.add(ck);
    let have = this.data.get(ck);
    if (!have) this.data.set(ck, (have = new Map()));
    // wait for requests already under way for some of these runs
    const waits: Promise<void>[] = [];
    const missing: string[] = [];
    for (const id of runIds) {
      if (have.has(id)) continue;
      const p = this.pending.get(`${ck}\u0000${id}`);
      if (p) waits.push(p);
      else missing.push(id);
    }
    for (let i = 0; i < missing.length; i += CHUNK) {
      const ids = missing.slice(i, i + CHUNK);
      const req = this.slot(async () => {
        this.stats.requests++;
        const res = await seriesBatch(this.entity, this.project, { keys: [key], runs: ids, samples, x });
        const got = res.series[key] ?? {};
        for (const id of ids) {
          const s = got[id];
          const pts = s ? toPoints(s) : { steps: [], xs: [], ys: [], total: 0, downsampled: false, last: -Infinity };
          this.stats.points += pts.steps.length;
          have!.set(id, pts);
        }
      }).finally(() => {
        for (const id of ids) this.pending.delete(`${ck}\u0000${id}`);
      });
      for (const id of ids) this.pending.set(`${ck}\u0000${id}`, req);
      waits.push(req);
    }
    await Promise.all(waits);
    return have;
  }

  /** The runs whose series of `key` grew in the last `live()` (at any x axis or resolution). */
  grown(key: string): ReadonlySet<string> | undefined {
    return this.grownRuns.get(key);
  }

  /** Forget a run's cached series (e.g. its state went back to running after a resume). */
  forget(runId: string): void {
    for (const m of this.data.values()) m.delete(runId);
  }

  /** Grow the cached series of `runIds` (running runs) by the points logged since the last
   * fetch: one request per (x axis, samples) for every metric cached. Returns the metrics
   * whose data changed. */
  async live(runIds: string[]): Promise<Set<string>> {
    const changed = new Set<string>();
    this.grownRuns = new Map();
    const touched = this.touched;
    this.touched = new Set();
    if (!runIds.length) return changed;
    // a cache at a resolution no panel reads any more (the same metric and x axis were read at
    // another: the visible runs changed) is not grown: its running runs are dropped from it
    // instead (read again if it is used again), its finished runs stay (they cannot change)
    const read = new Set([...touched].map((ck) => ck.slice(0, ck.lastIndexOf("\u0000"))));
    for (const [ck, m] of this.data) {
      if (touched.has(ck) || !read.has(ck.slice(0, ck.lastIndexOf("\u0000")))) continue;
      for (const id of runIds) m.delete(id);
    }
    const groups = new Map<string, { x: string; samples: number; keys: string[] }>();
    for (const [ck, m] of this.data) {
      if (!runIds.some((id) => m.has(id))) continue; // nothing of these runs to grow
      const [key, x, samples] = ck.split("\u0000");
      const gk = `${x}\u0000${samples}`;
      if (!groups.has(gk)) groups.set(gk, { x, samples: Number(samples), keys: [] });
      groups.get(gk)!.keys.push(key);
    }
    await Promise.all(
      [...groups.values()].map(async ({ x, samples, keys }) => {
        for (let k = 0; k < keys.length; k += 32) {
          const part = keys.slice(k, k + 32);
          const since: Record<string, number> = {};
          const runs: string[] = [];
          for (const id of runIds) {
            let last = Infinity;
            let known = false;
            for (const key of part) {
              const pts = this.data.get(comboKey(key, x, samples))?.get(id);
              if (!pts) continue;
              known = true;
              last = Math.min(last, pts.last);
            }
            if (!known) continue;
            runs.push(id);
            if (Number.isFinite(last)) since[id] = last;
          }
          if (!runs.length) continue;
          this.stats.requests++;
          this.stats.live++;
          const res = await seriesBatch(this.entity, this.project, { keys: part, runs, samples, x, since });
          for (const key of part) {
            const cache = this.data.get(comboKey(key, x, samples));
            const got = res.series[key] ?? {};
            if (!cache) continue;
            for (const id of runs) {
              const s = got[id];
              const pts = cache.get(id);
              if (!s || !pts || !s.steps.length) continue;
              const xs = s.xs ?? s.steps;
              let first = 0;
              while (first < s.steps.length && s.steps[first] <= pts.last) first++; // another key's older step
              const added = s.steps.length - first;
              if (!added) continue;
              // appended raw points: once they would outnumber twice the resolution, thin what
              // is cached first, as the server does (no new request, the extremes and ends
              // kept): its last point stays, so a chart draws the new points on from it
              if (pts.steps.length + added > 2 * samples) thin(pts, samples);
              for (let i = first; i < s.steps.length; i++) {
                pts.steps.push(s.steps[i]);
                pts.xs.push(xs[i]);
                pts.ys.push(s.values[i]);
              }
              pts.last = s.steps[s.steps.length - 1];
              pts.total += added;
              this.stats.points += added;
              changed.add(key);
              let grown = this.grownRuns.get(key);
              if (!grown) this.grownRuns.set(key, (grown = new Set()));
              grown.add(id);
            }
          }
        }
      }),
    );
    return changed;
  }
}
