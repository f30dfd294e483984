// Comparison: the chosen runs on shared charts. x axis: _step, relative time, wall time or any
// logged metric; EMA smoothing with the raw line faint behind; log scale; runs grouped by a
// column drawn as the group's mean with a min–max band; the hover readout shows every value.

import { get, pool, runPath, type Run, type Series, type XSeries } from "../api";
import { aggregate, LineChart, sortUnique, type LineSeries } from "../charts/line";
import type { View } from "../main";
import { setCrumbs, setTitle } from "../main";
import { color, errorBox, fieldValue, fmtValue, h, hashFor, replaceQuery, stateBadge } from "../util";
import { sectionOf } from "./run";

const SAMPLES = 1000;

interface Points {
  xs: number[];
  ys: number[];
}

export function compareView(root: HTMLElement, entity: string, project: string, query: URLSearchParams): View {
  const ids = (query.get("runs") ?? "").split(",").filter(Boolean);
  let xAxis = query.get("x") ?? "_step";
  let smoothing = Number(query.get("smooth") ?? "0") || 0;
  let logY = query.get("log") === "1";
  let groupBy = query.get("group") ?? "";
  setCrumbs([["Projects", "#/"], [`${entity}/${project}`, hashFor(["p", entity, project])], ["Compare", null]]);
  setTitle(`Compare ${ids.length} runs`);
  let disposed = false;
  const charts = new Map<string, LineChart>();
  const cache = new Map<string, Promise<Points>>();

  if (!ids.length) {
    root.append(h("h1", null, "Compare runs"), h("p", null, "No runs chosen: select runs in the ", h("a", { href: hashFor(["p", entity, project]) }, "runs table"), " and press Compare."));
    return {};
  }

  const xSelect = h("select#x-axis");
  const smoothInput = h("input#smoothing", { type: "range", min: 0, max: 0.99, step: 0.01, value: smoothing });
  const smoothOut = h("output", { for: "smoothing" }, smoothing.toFixed(2));
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
  let metrics: string[] = [];

  function save(): void {
    replaceQuery({ runs: ids.join(","), x: xAxis !== "_step" ? xAxis : null, smooth: smoothing ? String(smoothing) : null, log: logY ? "1" : null, group: groupBy || null });
  }

  function points(run: Run, key: string): Promise<Points> {
    const ck = `${run.run_id}\u0000${key}\u0000${xAxis}`;
    let p = cache.get(ck);
    if (!p) {
      const base = runPath(run.entity, run.project, run.run_id);
      p =
        xAxis === "_step"
          ? get<Series>(base + "/series", { key, samples: SAMPLES }).then((s) => ({ xs: s.steps, ys: s.values }))
          : get<XSeries>(base + "/xseries", { key, x: xAxis, samples: SAMPLES }).then((s) => sortUnique(s.xs, s.values));
      cache.set(ck, p);
    }
    return p;
  }

  function groups(): Map<string, Run[]> {
    const out = new Map<string, Run[]>();
    for (const r of runs) {
      const k = groupBy ? fmtValue(fieldValue(r, groupBy)) || "(none)" : r.run_id;
      if (!out.has(k)) out.set(k, []);
      out.get(k)!.push(r);
    }
    return out;
  }

  function xLabel(): string {
    return xAxis === "_step" ? "step" : xAxis === "_runtime" ? "relative time (s)" : xAxis === "_timestamp" ? "wall time" : xAxis;
  }

  async function drawChart(key: string): Promise<void> {
    const panel = body.querySelector<HTMLElement>(`figure[data-metric="${CSS.escape(key)}"]`);
    if (!panel) return;
    const series: LineSeries[] = [];
    const g = groups();
    let gi = 0;
    for (const [gkey, members] of g) {
      const data = await Promise.all(members.map((r) => points(r, key).catch(() => ({ xs: [], ys: [] }))));
      if (disposed) return;
      if (groupBy) {
        const agg = aggregate(data.filter((d) => d.xs.length));
        if (agg.xs.length) series.push({ label: `${gkey} (${members.length})`, color: color(gi), xs: agg.xs, ys: agg.mean, lo: agg.lo, hi: agg.hi });
      } else {
        const d = data[0];
        const run = members[0];
        if (d.xs.length) series.push({ label: run.name, color: color(runs.indexOf(run)), xs: d.xs, ys: d.ys });
      }
      gi++;
    }
    const area = panel.querySelector(".chart-slot")!;
    panel.dataset.series = String(series.length);
    if (!series.length) {
      area.replaceChildren(h("p.muted", null, "No values for this x axis."));
      return;
    }
    const opts = { xLabel: xLabel(), xTime: xAxis === "_timestamp", logY, smoothing };
    let chart = charts.get(key);
    if (!chart) {
      chart = new LineChart(series, opts);
      charts.set(key, chart);
      area.replaceChildren(chart.el);
    }
    chart.update(series, opts);
    panel.classList.add("drawn");
  }

  async function drawAll(): Promise<void> {
    body.dataset.ready = "false";
    await pool(metrics.map((k) => () => drawChart(k)), 4);
    body.dataset.ready = "true";
  }

  function drawLegend(): void {
    legend.replaceChildren(
      ...runs.map((r, i) =>
        h("span.legend-item", null, h("i.swatch", { style: `background:${color(i)}` }), h("a", { href: hashFor(["r", r.entity, r.project, r.run_id]) }, r.name), " ", stateBadge(r.state), r.group ? h("span.muted", null, ` ${r.group}`) : null),
      ),
    );
  }

  (async () => {
    const res = await get<{ runs: Run[]; total: number }>("/runs", { entity, project, run_id: ids.join(","), limit: ids.length, sort: "created_at" });
    if (disposed) return;
    runs = ids.map((id) => res.runs.find((r) => r.run_id === id)).filter((r): r is Run => !!r);
    const missing = ids.filter((id) => !runs.some((r) => r.run_id === id));
    if (missing.length) root.insertBefore(errorBox(`Not found: ${missing.join(", ")}`), body);
    drawLegend();
    const lists = await Promise.all(runs.map((r) => get<string[]>(runPath(r.entity, r.project, r.run_id) + "/metrics")));
    if (disposed) return;
    metrics = [...new Set(lists.flat())].filter((k) => !k.startsWith("_")).sort();
    const xOptions: [string, string][] = [["_step", "Step"], ["_runtime", "Relative time"], ["_timestamp", "Wall time"], ...metrics.map((m): [string, string] => [m, m])];
    xSelect.replaceChildren(...xOptions.map(([v, label]) => h("option", { value: v, selected: v === xAxis }, label)));
    const groupOptions = ["", "group", "job_type", "state", ...new Set(runs.flatMap((r) => Object.keys(r.config).slice(0, 20).map((k) => `config.${k}`)))];
    groupSelect.replaceChildren(...groupOptions.map((o) => h("option", { value: o, selected: o === groupBy }, o || "none")));
    body.replaceChildren();
    const sections = new Map<string, string[]>();
    for (const k of metrics) {
      const s = sectionOf(k);
      if (!sections.has(s)) sections.set(s, []);
      sections.get(s)!.push(k);
    }
    for (const [s, keys] of [...sections].sort(([a], [b]) => (a === "charts" ? -1 : b === "charts" ? 1 : a.localeCompare(b)))) {
      const grid = h("div.chart-grid");
      for (const k of keys) grid.append(h("figure.chart-panel", { "data-metric": k, "aria-label": `Chart of ${k}` }, h("figcaption", null, h("span.title", null, k)), h("div.chart-slot", null, h("p.muted", null, "…"))));
      body.append(h("details.section", { open: true }, h("summary", null, h("h2", null, s)), grid));
    }
    if (!metrics.length) body.append(h("p.muted", null, "These runs logged no metrics."));
    await drawAll();
  })().catch((err) => body.replaceChildren(errorBox(err)));

  xSelect.addEventListener("change", () => {
    xAxis = xSelect.value;
    save();
    void drawAll();
  });
  smoothInput.addEventListener("input", () => {
    smoothing = Number(smoothInput.value);
    smoothOut.textContent = smoothing.toFixed(2);
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
    void drawAll();
  });

  return {
    dispose() {
      disposed = true;
      for (const c of charts.values()) c.destroy();
    },
  };
}
