// A media key's steps over some runs, its values at a step (read in windows around it, so that
// moving the slider one step costs no request most of the time), and the step slider.

import type { Json } from "../api";
import { h } from "../util";
import { loggedSteps, loggedValues } from "./data";

/** Values are read this many steps either side of the one asked for. */
const WINDOW = 12;

/** The index of the largest element <= x in ascending `a`, or -1. */
export function floorIndex(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length - 1;
  let at = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= x) {
      at = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return at;
}

export interface StepValue {
  step: number;
  value: Json;
}

export class KeySteps {
  /** each run's steps, ascending */
  byRun = new Map<string, number[]>();
  /** every step any run logged, ascending (the slider's stops) */
  all: number[] = [];
  private values = new Map<string, Map<number, Json>>();
  private inflight = new Map<string, Promise<void>>();

  constructor(
    readonly entity: string,
    readonly project: string,
    readonly key: string,
  ) {}

  /** Read the runs' steps again (runs that logged more get new stops). */
  async load(runIds: string[]): Promise<void> {
    const got = await loggedSteps(this.entity, this.project, this.key, runIds);
    this.byRun = new Map(runIds.filter((id) => got[id]?.length).map((id) => [id, got[id]]));
    const union = new Set<number>();
    for (const s of this.byRun.values()) for (const x of s) union.add(x);
    this.all = [...union].sort((a, b) => a - b);
  }

  /** The step a run shows when the slider is at `step`: its last one at or before it (its
   * first when it has none before). */
  stepOf(runId: string, step: number): number | null {
    const s = this.byRun.get(runId);
    if (!s?.length) return null;
    const i = floorIndex(s, step);
    return s[Math.max(0, i)];
  }

  cached(runId: string, step: number): Json | undefined {
    return this.values.get(runId)?.get(step);
  }

  /** Each run's value at the slider's `step` (reads a window of steps around it if needed). */
  async at(step: number, runIds: string[]): Promise<Map<string, StepValue>> {
    const missing = runIds.filter((id) => {
      const s = this.stepOf(id, step);
      return s !== null && this.cached(id, s) === undefined;
    });
    if (missing.length) await this.fetchAround(step, missing);
    const out = new Map<string, StepValue>();
    for (const id of runIds) {
      const s = this.stepOf(id, step);
      if (s === null) continue;
      const v = this.cached(id, s);
      if (v !== undefined) out.set(id, { step: s, value: v });
    }
    return out;
  }

  /** Read ahead (the next stops of the slider) without waiting. */
  prefetch(step: number, runIds: string[]): void {
    const missing = runIds.filter((id) => {
      const s = this.stepOf(id, step);
      return s !== null && this.cached(id, s) === undefined;
    });
    if (missing.length) void this.fetchAround(step, missing).catch(() => undefined);
  }

  private fetchAround(step: number, runIds: string[]): Promise<void> {
    let lo = Infinity;
    let hi = -Infinity;
    let count = 0;
    for (const id of runIds) {
      const s = this.byRun.get(id)!;
      const i = Math.max(0, floorIndex(s, step));
      const a = Math.max(0, i - WINDOW);
      const b = Math.min(s.length - 1, i + WINDOW);
      lo = Math.min(lo, s[a]);
      hi = Math.max(hi, s[b]);
    }
    for (const id of runIds) {
      const s = this.byRun.get(id)!;
      count = Math.max(count, floorIndex(s, hi) - floorIndex(s, lo - 1));
    }
    const tag = `${lo}:${hi}:${runIds.join(",")}`;
    let p = this.inflight.get(tag);
    if (!p) {
      // as many samples as the range has steps: nothing is thinned out
      p = loggedValues(this.entity, this.project, this.key, runIds, Math.max(1, count), lo, hi).then((got) => {
        for (const [id, v] of Object.entries(got)) {
          let m = this.values.get(id);
          if (!m) this.values.set(id, (m = new Map()));
          v.steps.forEach((s, i) => m!.set(s, v.values[i]));
        }
      });
      this.inflight.set(tag, p);
      void p.finally(() => this.inflight.delete(tag)).catch(() => undefined);
    }
    return p;
  }
}

/** The step slider of a media panel: a range over the steps the runs logged. */
export class StepSlider {
  readonly el: HTMLElement;
  private input: HTMLInputElement;
  private out: HTMLOutputElement;
  private steps: number[] = [];
  /** at the last step: stays there when runs log more */
  private atEnd = true;
  /** the slider's last move: +1 right, -1 left, 0 none yet (read-ahead goes that way) */
  private direction = 0;
  private lastIndex = 0;

  constructor(
    label: string,
    private onChange: (step: number) => void,
  ) {
    this.input = h("input.media-slider", { type: "range", min: 0, max: 0, step: 1, value: 0, "aria-label": `Step of ${label}` });
    this.out = h("output.media-step");
    this.el = h("div.media-slider-row", null, h("span.muted", null, "Step"), this.input, this.out);
    this.input.addEventListener("input", () => {
      const i = Number(this.input.value);
      if (i !== this.lastIndex) this.direction = i > this.lastIndex ? 1 : -1;
      this.lastIndex = i;
      this.atEnd = i >= this.steps.length - 1;
      this.show();
      this.onChange(this.value());
    });
  }

  /** New stops; keeps the step shown (or the last one when it was at the end). */
  set(steps: number[], initial?: number): void {
    const current = this.steps.length ? this.value() : null;
    this.steps = steps;
    this.input.max = String(Math.max(0, steps.length - 1));
    let i = steps.length - 1;
    if (initial !== undefined) i = Math.max(0, floorIndex(steps, initial));
    else if (!this.atEnd && current !== null) i = Math.max(0, floorIndex(steps, current));
    this.input.value = String(Math.max(0, i));
    this.lastIndex = Math.max(0, i);
    this.atEnd = i >= steps.length - 1;
    this.el.hidden = steps.length <= 1;
    this.show();
  }

  value(): number {
    return this.steps[Number(this.input.value)] ?? 0;
  }

  /** the stops to read ahead, nearest first: once the slider has moved, three further in the
   * direction of its last move and one back (a held arrow key or a drag then finds the next
   * steps fetched); before that, one either side and the second after */
  neighbours(): number[] {
    const i = Number(this.input.value);
    const d = this.direction;
    const at = d ? [i + d, i + 2 * d, i + 3 * d, i - d] : [i + 1, i - 1, i + 2];
    return at.map((j) => this.steps[j]).filter((s): s is number => s !== undefined);
  }

  private show(): void {
    const s = this.value();
    this.out.textContent = `${s.toLocaleString()}${this.steps.length > 1 ? ` (${Number(this.input.value) + 1} of ${this.steps.length.toLocaleString()})` : ""}`;
    this.el.dataset.step = String(s);
  }
}
