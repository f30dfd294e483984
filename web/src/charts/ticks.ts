// Axis ticks whose labels are their values: "nice" increments (1, 2, 2.5, 5 x 10^k), each label
// printed with exactly the decimals of the increment (0.25 reads "0.25", never "0.3"), integer
// axes (steps, run numbers) with integer increments only, log axes at powers of ten (with 2 and
// 5 between when the range is short), and time axes at round seconds, minutes, hours or days.
//
// Every chart (charts/plot.ts, parcoords, scatter) takes its ticks from here, so a label drawn
// is always String(value) at the increment's precision: parseFloat(label) === value.

export interface Tick {
  value: number;
  label: string;
}

const STEPS = [1, 2, 2.5, 5];
const INTEGER_STEPS = [1, 2, 5];

/** Decimals of a nice increment (2.5e-3 -> 4, 0.25 -> 2, 5 -> 0). */
export function decimalsOf(incr: number): number {
  if (!(incr > 0) || !Number.isFinite(incr)) return 0;
  for (let d = 0; d <= 15; d++) {
    const scaled = incr * Math.pow(10, d);
    if (Math.abs(scaled - Math.round(scaled)) < 1e-9 * Math.max(1, scaled)) return d;
  }
  return 15;
}

/** A number with exactly `decimals` decimals, or in exponent form for very large/small ones
 * (mantissa with the decimals the increment needs at that exponent). */
export function formatAt(v: number, incr: number): string {
  if (v === 0 || Object.is(v, -0)) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) {
    const exp = Math.floor(Math.log10(a) + 1e-12);
    const mantissaDecimals = Math.min(12, Math.max(0, decimalsOf(incr / Math.pow(10, exp))));
    return trimExp(v.toExponential(mantissaDecimals));
  }
  return v.toFixed(Math.min(15, decimalsOf(incr)));
}

function trimExp(s: string): string {
  // "1.50e+6" -> "1.50e6"; keep the mantissa's decimals (they are the increment's)
  return s.replace("e+", "e");
}

/** The nice increment for about `count` ticks over [lo, hi]. */
export function niceIncrement(lo: number, hi: number, count: number, integer = false): number {
  const span = Math.abs(hi - lo);
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const steps = integer ? INTEGER_STEPS : STEPS;
  for (const s of steps) {
    const incr = s * mag;
    if (incr >= raw - 1e-12 * raw) return integer ? Math.max(1, Math.round(incr)) : incr;
  }
  const next = 10 * mag;
  return integer ? Math.max(1, Math.round(next)) : next;
}

/** Ticks of a linear axis over [lo, hi], at most about `count`. */
export function linearTicks(lo: number, hi: number, count: number, integer = false): Tick[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const v = lo;
    return [{ value: v, label: formatAt(v, integer ? 1 : Math.abs(v) / 10 || 1) }];
  }
  const incr = niceIncrement(lo, hi, count, integer);
  const d = decimalsOf(incr);
  const first = Math.ceil(lo / incr - 1e-9);
  const last = Math.floor(hi / incr + 1e-9);
  const out: Tick[] = [];
  for (let i = first; i <= last && out.length < 200; i++) {
    // rounded to the increment's decimals: no 0.30000000000000004
    const value = d > 0 && d <= 15 ? Number((i * incr).toFixed(d)) : i * incr;
    out.push({ value, label: formatAt(value, incr) });
  }
  return out;
}

/** Ticks of a log10 axis over [lo, hi] (both > 0): decades, and 2 and 5 between them when
 * the axis spans less than three decades. */
export function logTicks(lo: number, hi: number, count: number): Tick[] {
  if (!(lo > 0) || !(hi > 0)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  const e0 = Math.floor(Math.log10(lo) + 1e-12);
  const e1 = Math.ceil(Math.log10(hi) - 1e-12);
  const decades = e1 - e0;
  const mults = decades < 3 ? [1, 2, 5] : [1];
  const stride = Math.max(1, Math.ceil(decades / Math.max(1, count)));
  const out: Tick[] = [];
  for (let e = e0; e <= e1; e++) {
    if (mults.length === 1 && (e - e0) % stride !== 0) continue;
    for (const m of mults) {
      const value = Number((m * Math.pow(10, e)).toPrecision(12));
      if (value < lo * (1 - 1e-9) || value > hi * (1 + 1e-9)) continue;
      out.push({ value, label: logLabel(m, e) });
    }
  }
  if (out.length < 2 && decades <= 1) return linearTicks(lo, hi, count);
  return out;
}

function logLabel(m: number, e: number): string {
  if (e >= 6 || e <= -5) return `${m}e${e}`;
  const v = m * Math.pow(10, e);
  return e < 0 ? v.toFixed(-e) : String(Math.round(v));
}

const SECOND = 1;
const MINUTE = 60;
const HOUR = 3600;
const DAY = 86400;
const TIME_STEPS = [1, 2, 5, 10, 15, 30, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY];

/** Ticks of a wall-clock axis (unix seconds, local time). */
export function timeTicks(lo: number, hi: number, count: number): Tick[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi <= lo) return [];
  const span = hi - lo;
  const raw = span / Math.max(1, count);
  if (raw < SECOND) {
    // sub-second: the clock with the increment's decimals of a second
    return linearTicks(lo, hi, count).map((t) => {
      const frac = t.label.includes(".") ? "." + t.label.split(".")[1] : "";
      return { value: t.value, label: clock(t.value, true) + frac };
    });
  }
  const incr = TIME_STEPS.find((s) => s >= raw) ?? Math.ceil(raw / DAY) * DAY;
  // ticks at multiples of the increment in local time (midnight, the hour, ...)
  const tz = new Date(lo * 1000).getTimezoneOffset() * 60;
  const first = Math.ceil((lo - tz) / incr) * incr + tz;
  const out: Tick[] = [];
  const days = span > DAY;
  for (let v = first; v <= hi + 1e-9 && out.length < 200; v += incr) {
    const label = days && incr >= DAY ? dateLabel(v) : days ? `${dateLabel(v)} ${clock(v, false)}` : clock(v, incr < MINUTE);
    out.push({ value: v, label });
  }
  return out;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

function clock(ts: number, seconds: boolean): string {
  const d = new Date(ts * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}${seconds ? `:${pad(d.getSeconds())}` : ""}`;
}

function dateLabel(ts: number): string {
  const d = new Date(ts * 1000);
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Relative time in a readable unit: the axis' values are divided by the unit's seconds. */
export function durationUnit(maxSeconds: number): { unit: string; seconds: number } {
  if (maxSeconds >= 2 * DAY) return { unit: "d", seconds: DAY };
  if (maxSeconds >= 2 * HOUR) return { unit: "h", seconds: HOUR };
  if (maxSeconds >= 2 * MINUTE) return { unit: "min", seconds: MINUTE };
  if (maxSeconds >= 2 || maxSeconds === 0) return { unit: "s", seconds: 1 };
  return { unit: "ms", seconds: 0.001 };
}
