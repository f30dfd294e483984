// Comparison: the chosen runs on shared charts, one per metric any of them logged. x axis:
// step, each run's step metric, relative time, wall time or any metric; EMA smoothing with the
// raw line faint behind; log scale; runs grouped by any field (a nested config key too) drawn as
// each group's mean with a band. Every chart's series of all runs come in one request
// (POST /projects/{e}/{p}/series), and running runs grow in place.

import { get, projectPath, type ProjectKeys, type Run } from "../api";
import type { View } from "../main";
import { setCrumbs, setTitle } from "../main";
import { LinePanel } from "../panels/line";
import { refreshMs } from "./run";
import type { PanelSpec } from "../panels/types";
import { errorBox, h, hashFor, isLive, replaceQuery, stateBadge } from "../util";
import { colorBase, FixedContext, groupFields } from "../workspace/runs";
import { sectionName } from "../workspace/model";

const LIVE_MS = 5000;
const LEGEND_OPEN = 12;

export function compareView(root: HTMLElement, entity: string, project: string, query: URLSearchParams): View {
  const ids = (query.get("runs") ?? "").split(",").filter(Boolean);
  const ctx = new FixedContext(entity, project);
  ctx.opts.x = query.get("x") ?? "_step";
  ctx.opts.smoothing = Number(query.get("smooth") ?? "0") || 0;
  let logY = query.get("log") === "1";
  let groupBy = query.get("group") ?? "";
  setCrumbs([["Projects", "#/"], [`${entity}/${project}`, hashFor(["p", entity, project])], ["Compare", null]]);
  setTitle(`Compare ${ids.length} runs`);
  let disposed = false;
  let liveTimer: number | undefined;
  const panels = new Map<string, { panel: LinePanel; slot: HTMLElement; spec: PanelSpec }>();

  if (!ids.length) {
    root.append(h("h1", null, "Compare runs"), h("p", null, "No runs chosen: select runs in the ", h("a", { href: hashFor(["p", entity, project, "runs"]) }, "runs table"), " and press Compare."));
    return {};
  }

  const xSelect = h("select#x-axis");
  const smoothInput = h("input#smoothing", { type: "range", min: 0, max: 0.99, step: 0.01, value: ctx.opts.smoothing });
  const smoothOut = h("output", { for: "smoothing" }, ctx.opts.smoothing.toFixed(2));
  const logBox = h("input#log-scale", { type: "checkbox", checked: logY });
  const groupSelect = h("select#compare-group");
  const toolbar = h(
    "div.toolbar",
    { role: "group", "aria-label": "Chart settings" },
    h("label", { for: "x-axis" }, "X axis"),
    xSelect,
    h("label", { for: "smoothing" }, "Smoothing"),
    smoothInput,
    smoothOut,
    h("span", null, logBox, h("label", { for: "log-scale" }, " Log scale")),
    h("label", { for: "compare-group" }, "Group runs by"),
    groupSelect,
  );
  const legend = h("div.run-legend", { "aria-label": "Runs" });
  const body = h("div#compare-charts", null, h("p.muted", null, "Loading…"));
  root.append(h("h1", null, `Compare ${ids.length} runs`), toolbar, legend, body);

  let runs: Run[] = [];
  let base = 0;

  function save(): void {
    replaceQuery({ runs: ids.join(","), x: ctx.opts.x !== "_step" ? ctx.opts.x : null, smooth: ctx.opts.smoothing ? String(ctx.opts.smoothing) : null, log: logY ? "1" : null, group: groupBy || null, refresh: query.get("refresh") });
  }

  function drawLegend(): void {
    const items = (groupBy ? (ctx.groups() ?? []).map((g) => ({ color: g.color, label: `${g.label} (${g.runs.length})`, run: null as Run | null })) : ctx.runs().map((r) => ({ color: r.color, label: r.run.name, run: r.run }))).map((it) =>
      h(
        "span.legend-item",
        null,
        h("i.swatch", { style: `background:${it.color}` }),
        it.run ? h("a", { href: hashFor(["r", it.run.entity, it.run.project, it.run.run_id]) }, it.label) : h("span", null, it.label),
        it.run ? [" ", stateBadge(it.run.state), it.run.group ? h("span.muted", null, ` ${it.run.group}`) : null] : null,
      ),
    );
    const summary = groupBy ? `${items.length} groups` : `${items.length} runs`;
    // many runs: a folded, scrolling list (the charts come first)
    legend.replaceChildren(h("details.legend-box", { open: items.length <= LEGEND_OPEN }, h("summary", null, summary), h("div.legend-items", null, items)));
  }

  function regroup(): void {
    ctx.setRuns(runs, base, groupBy);
    drawLegend();
  }

  async function drawAll(): Promise<void> {
    body.dataset.ready = "false";
    for (const { spec } of panels.values()) {
      if (logY) spec.config.logY = true;
      else delete spec.config.logY;
    }
    await Promise.all(
      [...panels.values()].map(async ({ panel, slot }) => {
        try {
          await panel.update("runs");
          slot.dataset.series = panel.el.dataset.series ?? "0";
          slot.classList.toggle("drawn", panel.el.classList.contains("drawn"));
        } catch (err) {
          slot.querySelector(".chart-slot")!.replaceChildren(errorBox(err));
        }
      }),
    );
    if (!disposed) body.dataset.ready = "true";
  }

  async function live(): Promise<void> {
    if (disposed || document.hidden) return;
    const running = runs.filter(isLive);
    if (!running.length) return;
    try {
      const res = await get<{ runs: Run[] }>("/runs", { entity, project, run_id: running.map((r) => r.run_id).join(","), limit: running.length });
      const byId = new Map(res.runs.map((r) => [r.run_id, r]));
      runs = runs.map((r) => byId.get(r.run_id) ?? r);
      regroup();
      const changed = await ctx.series.live(running.map((r) => r.run_id));
      for (const { panel, slot } of panels.values()) {
        panel.live(changed);
        slot.dataset.series = panel.el.dataset.series ?? "0";
      }
      body.dataset.live = String(Number(body.dataset.live ?? "0") + 1);
    } catch {
      /* the next tick */
    }
  }

  (async () => {
    const [res, keys, b] = await Promise.all([
      get<{ runs: Run[]; total: number }>("/runs", { entity, project, run_id: ids.join(","), limit: ids.length, sort: "created_at" }),
      get<ProjectKeys>(`${projectPath(entity, project)}/keys`).catch(() => ({ config: [], summary: [], metrics: [] }) as ProjectKeys),
      colorBase(entity, project).catch(() => 0),
    ]);
    if (disposed) return;
    base = b;
    runs = ids.map((id) => res.runs.find((r) => r.run_id === id)).filter((r): r is Run => !!r);
    const missing = ids.filter((id) => !runs.some((r) => r.run_id === id));
    if (missing.length) root.insertBefore(errorBox(`Not found: ${missing.join(", ")}`), body);
    // the metrics of these runs: the project's metrics when it knows them (one request),
    // else each run's list
    let metrics: string[];
    if (keys.metrics && runs.length > 20) metrics = keys.metrics;
    else {
      const lists = await Promise.all(runs.map((r) => get<string[]>(`/runs/${encodeURIComponent(r.entity)}/${encodeURIComponent(r.project)}/${encodeURIComponent(r.run_id)}/metrics`)));
      metrics = [...new Set(lists.flat())];
    }
    metrics = metrics.filter((k) => !k.startsWith("_")).sort();
    if (disposed) return;
    ctx.projectKeys = { ...keys, metrics };
    regroup();
    const xOptions: [string, string][] = [["_step", "Step"], ["step_metric", "Each run's step metric"], ["_runtime", "Relative time"], ["_timestamp", "Wall time"], ...metrics.map((m): [string, string] => [m, m])];
    xSelect.replaceChildren(...xOptions.map(([v, label]) => h("option", { value: v, selected: v === ctx.opts.x }, label)));
    const groupOptions = ["", ...groupFields(keys)];
    if (groupBy && !groupOptions.includes(groupBy)) groupOptions.push(groupBy);
    groupSelect.replaceChildren(...groupOptions.map((o) => h("option", { value: o, selected: o === groupBy }, o || "none")));
    body.replaceChildren();
    const sections = new Map<string, string[]>();
    for (const k of metrics) {
      const s = sectionName(k);
      if (!sections.has(s)) sections.set(s, []);
      sections.get(s)!.push(k);
    }
    for (const [s, keysOf] of [...sections].sort(([a], [b2]) => (a === "charts" ? -1 : b2 === "charts" ? 1 : a.localeCompare(b2)))) {
      const grid = h("div.chart-grid");
      for (const k of keysOf) {
        const spec: PanelSpec = { id: k, kind: "line", w: 1, h: 220, config: { key: k } };
        const panel = new LinePanel(ctx, spec);
        const slot = h("figure.chart-panel", { "data-metric": k, "aria-label": `Chart of ${k}` }, h("figcaption", null, h("span.title", null, k)), h("div.chart-slot", null, panel.el));
        panels.set(k, { panel, slot, spec });
        grid.append(slot);
      }
      body.append(h("details.section", { open: true }, h("summary", null, h("h2", null, s)), grid));
    }
    if (!metrics.length) body.append(h("p.muted", null, "These runs logged no metrics."));
    await drawAll();
    liveTimer = window.setInterval(() => void live(), refreshMs(query, LIVE_MS));
  })().catch((err) => body.replaceChildren(errorBox(err)));

  xSelect.addEventListener("change", () => {
    ctx.opts.x = xSelect.value;
    save();
    void drawAll();
  });
  smoothInput.addEventListener("input", () => {
    ctx.opts.smoothing = Number(smoothInput.value);
    smoothOut.textContent = ctx.opts.smoothing.toFixed(2);
    save();
    void drawAll();
  });
  logBox.addEventListener("change", () => {
    logY = logBox.checked;
    save();
    void drawAll();
  });
  groupSelect.addEventListener("change", () => {
    groupBy = groupSelect.value;
    save();
    regroup();
    void drawAll();
  });

  return {
    dispose() {
      disposed = true;
      window.clearInterval(liveTimer);
      for (const { panel } of panels.values()) panel.destroy();
    },
  };
}
