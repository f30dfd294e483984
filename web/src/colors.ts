// Run colours: stable (a run keeps its colour across reloads, filters, sorts and grouping) and
// distinct for thousands of runs. A run's colour comes from its index in the project (its pk
// minus the project's first run's pk, so the first runs get the hand-picked palette); past
// that palette, hues step by the golden angle with lightness and saturation cycling, which
// never gives two runs the same colour before 30,000 runs.

export const PALETTE = [
  "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#bcbd22", "#7f7f7f", "#393b79", "#ad494a", "#637939", "#e7969c", "#7b4173", "#3182bd",
  "#e6550d", "#31a354", "#756bb1", "#843c39",
];

const SAT = [68, 52, 80];
const LIGHT = [44, 34, 56];

/** The colour of the run at `index` (>= 0) of its project. */
export function colorAt(index: number): string {
  const i = Math.max(0, Math.floor(index));
  if (i < PALETTE.length) return PALETTE[i];
  const k = i - PALETTE.length;
  const hue = ((k * 137.508) % 360 + 360) % 360;
  const sat = SAT[k % 3];
  const light = LIGHT[Math.floor(k / 3) % 3];
  return `hsl(${hue.toFixed(3)}, ${sat}%, ${light}%)`;
}

/** The colour of a run given its pk and the pk of the project's first run. */
export function runColor(pk: number, basePk: number): string {
  return colorAt(pk - basePk);
}

/** Group colours: by the group's index in sorted order (groups are few). */
export function groupColor(index: number): string {
  return colorAt(index);
}
