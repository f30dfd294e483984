// Runs as the workspace, the comparison and the run page read them: pages of /runs, the
// project's colour base, grouping by any field (a nested config key such as config.model.kind),
// and a PanelContext over a fixed set of runs.

import { get, type ProjectKeys, type Run } from "../api";
import { groupColor, runColor } from "../colors";
import type { PanelContext, RunGroup, ShownRun, WorkspaceSettings } from "../panels/types";
import { fieldValue, fmtValue } from "../util";
import { DEFAULT_SETTINGS } from "./model";
import { SeriesCache } from "./series";

const PAGE = 1000;

/** Runs matching `filter` (JSON, or null), sorted by `sort`, up to `cap`; and how many match. */
export async function loadRuns(entity: string, project: string, filter: string | null, sort: string | null, cap: number, signal?: AbortSignal): Promise<{ runs: Run[]; total: number }> {
  const runs: Run[] = [];
  let total = 0;
  for (;;) {
    const limit = Math.min(PAGE, cap - runs.length);
    if (limit <= 0) break;
    const res = await get<{ runs: Run[]; total: number }>("/runs", { entity, project, filter, sort, limit, offset: runs.length }, signal);
    runs.push(...res.runs);
    total = res.total;
    if (res.runs.length < limit || runs.length >= res.total) break;
  }
  return { runs, total };
}

/** The pk of the project's first run: run colours count from it (runColor). */
export async function colorBase(entity: string, project: string): Promise<number> {
  const res = await get<{ runs: Run[] }>("/runs", { entity, project, sort: "created_at", limit: 1 });
  return res.runs[0]?.pk ?? 0;
}

export function groupKeyOf(run: Run, field: string): string {
  const v = fieldValue(run, field);
  const text = Array.isArray(v) ? v.map(String).sort().join(", ") : fmtValue(v);
  return text === "" ? "(none)" : text;
}

/** Runs grouped by `field`, groups in sorted order (numbers by value), one colour each. */
export function groupRuns(shown: ShownRun[], field: string): RunGroup[] {
  const by = new Map<string, ShownRun[]>();
  for (const r of shown) {
    const k = groupKeyOf(r.run, field);
    if (!by.has(k)) by.set(k, []);
    by.get(k)!.push(r);
  }
  const keys = [...by.keys()].sort((a, b) => {
    const na = Number(a);
    const nb = Number(b);
    if (a !== "" && b !== "" && Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
    if (a === "(none)") return 1;
    if (b === "(none)") return -1;
    return a.localeCompare(b);
  });
  return keys.map((k, i) => ({ key: k, label: k, color: groupColor(i), runs: by.get(k)! }));
}

/** The fields runs can be grouped by: the run's own and every config leaf key. */
export function groupFields(keys: ProjectKeys | null): string[] {
  return ["group", "job_type", "state", "tags", "host", "sweep", ...(keys?.config ?? []).map((k) => `config.${k}`)];
}

/** A PanelContext over runs chosen by the caller (the comparison, the run page). */
export class FixedContext implements PanelContext {
  readonly series: SeriesCache;
  private shown: ShownRun[] = [];
  private grouped: RunGroup[] | null = null;
  private field = "";
  opts: WorkspaceSettings = { ...DEFAULT_SETTINGS };
  projectKeys: ProjectKeys = { config: [], summary: [], metrics: [] };

  constructor(
    readonly entity: string,
    readonly project: string,
  ) {
    this.series = new SeriesCache(entity, project);
  }

  setRuns(runs: Run[], base: number, groupBy = ""): void {
    this.shown = runs.map((run) => ({ run, color: runColor(run.pk, base) }));
    this.field = groupBy;
    this.grouped = groupBy ? groupRuns(this.shown, groupBy) : null;
  }

  runs(): ShownRun[] {
    return this.shown;
  }

  groups(): RunGroup[] | null {
    return this.grouped;
  }

  groupBy(): string {
    return this.field;
  }

  settings(): WorkspaceSettings {
    return this.opts;
  }

  keys(): ProjectKeys {
    return this.projectKeys;
  }

  metrics(): string[] {
    return this.projectKeys.metrics ?? [];
  }

  save(): void {}
}
