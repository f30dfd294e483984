// The panel system of the project workspace (docs/dashboard.md, "Panel kinds").
//
// A panel kind is one module exporting a `PanelKind` and registered in panels/index.ts (the
// one place that lists them). The workspace owns the layout (sections, order, size, the
// settings form's frame, saving) and hands each panel a `PanelContext`: the visible runs with
// their colours, the groups when runs are grouped, the workspace-wide settings, the project's
// keys and the batched series cache. A panel only draws.

import type { Doc, Json, ProjectKeys, Run } from "../api";
import type { SeriesCache } from "../workspace/series";

/** A panel as saved in the workspace document. `config` is the kind's own (JSON). */
export interface PanelSpec {
  id: string;
  kind: string;
  /** the panel's title; empty: the kind's `title(spec)` */
  title?: string;
  /** columns spanned (1-4, clamped to the row) */
  w: number;
  /** height of the panel's body in pixels */
  h: number;
  config: Doc;
}

/** A run as the workspace shows it: visible, with its stable colour. */
export interface ShownRun {
  run: Run;
  color: string;
}

/** Runs grouped by a field (`config.model.kind`, `group`, ...): one colour per group. */
export interface RunGroup {
  key: string;
  label: string;
  color: string;
  runs: ShownRun[];
}

/** Settings of the whole workspace; a panel's own config overrides them where it has one. */
export interface WorkspaceSettings {
  /** default x axis of line panels: _step, _runtime, _timestamp, step_metric or a metric */
  x: string;
  /** default EMA smoothing weight of line panels, 0..0.99 */
  smoothing: number;
  /** at most this many runs are visible unless shown one by one */
  maxVisible: number;
}

export interface PanelContext {
  readonly entity: string;
  readonly project: string;
  /** the visible runs, in the sidebar's order */
  runs(): ShownRun[];
  /** the visible runs' groups when the workspace groups runs, else null */
  groups(): RunGroup[] | null;
  /** the field runs are grouped by ("" when not grouped) */
  groupBy(): string;
  settings(): WorkspaceSettings;
  keys(): ProjectKeys;
  /** the metric names logged by the project (keys().metrics, never undefined) */
  metrics(): string[];
  readonly series: SeriesCache;
  /** save a change of the panel's config made from the panel itself (e.g. a zoom) */
  save(config: Doc): void;
}

export type UpdateReason = "runs" | "settings" | "config" | "size";

export interface PanelInstance {
  readonly el: HTMLElement;
  /** redraw: the visible runs, the grouping, the settings, the config or the size changed */
  update(reason: UpdateReason): void | Promise<void>;
  /** running runs logged more: `changed` holds the metrics whose cached series grew */
  live?(changed: Set<string>): void;
  destroy(): void;
}

/** One form field of a panel's settings (the workspace draws the form). */
export type SettingField =
  | { name: string; label: string; type: "select"; options: [string, string][] }
  | { name: string; label: string; type: "checkbox" }
  | { name: string; label: string; type: "number"; min?: number; max?: number; step?: number }
  | { name: string; label: string; type: "text"; placeholder?: string }
  | { name: string; label: string; type: "fields"; options: string[] };

export interface PanelKind {
  /** the `kind` saved in specs: "line", "bar", "scatter", "parcoords", ... */
  readonly kind: string;
  /** shown in the add-panel dialog */
  readonly label: string;
  /** the config of a new panel of this kind (from the add-panel dialog's first field) */
  defaults(ctx: PanelContext, first?: string): Doc;
  /** the title of a panel without its own */
  title(spec: PanelSpec): string;
  /** the settings form of a panel of this kind */
  settings(ctx: PanelContext, spec: PanelSpec): SettingField[];
  /** the panel for a spec */
  create(ctx: PanelContext, spec: PanelSpec): PanelInstance;
  /** Automatic panels: claim a logged metric for a panel of this kind (return its config),
   * given its summary value in a run that has it; the first kind in the registry that
   * claims a metric gets it. `run` is a run that logged it (its meta holds W&B's custom
   * chart specs). */
  auto?(metric: string, sample: Json | undefined, run?: Run): Doc | null;
  /** the add-panel dialog's first field (a metric, a summary key, ...) */
  readonly pick?: "metric" | "summary" | "none";
}
