// A sweep: state and controls (pause, resume, stop, cancel), method, agents and their
// heartbeats, runs done / cap, best run, best-so-far curve, parallel coordinates of the
// parameters and the metric with brushing (filters the runs below), parameter importance for
// the metric, and a scatter of the metric against any parameter.

import { get, post, type Agent, type Doc, type Front, type Importance, type Json, type Sweep, type Trial } from "../api";
import { LineChart } from "../charts/line";
import { ParallelCoordinates, type PCAxis } from "../charts/parcoords";
import { Scatter } from "../charts/scatter";
import type { View } from "../main";
import { setCrumbs, setTitle } from "../main";
import { errorBox, fmtAgo, fmtNumber, fmtTime, fmtValue, h, hashFor, stateBadge } from "../util";

const POLL_MS = 5000;
const FINAL = new Set(["finished", "failed", "crashed", "killed", "stopped", "preempted"]);

/** The sweep metric of a run from its summary, as runyard.sweeps.controller.objective. */
export function objective(summary: Doc, metric: string, goal: string): number | null {
  let v: Json | undefined = summary[metric];
  if (v && typeof v === "object" && !Array.isArray(v)) {
    const keys = ["best", goal === "maximize" ? "max" : "min", "last"];
    const k = keys.find((key) => key in (v as Doc));
    if (!k) return null;
    v = (v as Doc)[k];
  }
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function paramNames(sweep: Sweep, trials: Trial[]): string[] {
  const params = (sweep.config.parameters ?? {}) as Doc;
  const names = Object.keys(params).filter((k) => {
    const p = params[k] as Doc | null;
    return !(p && typeof p === "object" && "value" in p && Object.keys(p).length === 1); // constants
  });
  for (const t of trials) for (const k of Object.keys(t.params ?? {})) if (!names.includes(k) && !(params[k] as Doc | undefined)?.value) names.push(k);
  return names;
}

function isLog(sweep: Sweep, name: string): boolean {
  const p = ((sweep.config.parameters ?? {}) as Doc)[name] as Doc | undefined;
  return !!p && typeof p.distribution === "string" && p.distribution.includes("log");
}

export function sweepView(root: HTMLElement, sweepId: string): View {
  setCrumbs([["Projects", "#/"], [`Sweep ${sweepId}`, null]]);
  setTitle(`Sweep ${sweepId}`);
  let disposed = false;
  let timer: number | undefined;
  let lastKey = "";
  let pc: ParallelCoordinates | null = null;
  let scatter: Scatter | null = null;
  let curve: LineChart | null = null;
  let frontChart: Scatter | null = null;

  const head = h("div.sweephead");
  const controls = h("div.controls", { role: "group", "aria-label": "Sweep controls" });
  const stats = h("div.stats");
  const agentsBox = h("section#agents", { "aria-labelledby": "agents-h" });
  const curveBox = h("section#best-curve", { "aria-labelledby": "curve-h" });
  const pcBox = h("section#parcoords", { "aria-labelledby": "pc-h" });
  const impBox = h("section#importance", { "aria-labelledby": "imp-h" });
  const scatterBox = h("section#scatter", { "aria-labelledby": "scatter-h" });
  const trialsBox = h("section#trials", { "aria-labelledby": "trials-h" });
  const frontBox = h("section#pareto", { "aria-labelledby": "pareto-h", hidden: true });
  const status = h("div", { role: "status", "aria-live": "polite" });
  root.append(head, controls, status, stats, frontBox, h("div.two", null, curveBox, impBox), pcBox, h("div.two", null, scatterBox, agentsBox), trialsBox);

  async function act(state: string): Promise<void> {
    status.replaceChildren();
    try {
      await post<Sweep>(`/sweeps/${encodeURIComponent(sweepId)}/state`, { state });
      status.textContent = `Sweep ${state === "running" ? "resumed" : state}.`;
      await refresh(true);
    } catch (err) {
      status.replaceChildren(errorBox(err));
    }
  }

  function drawHead(sweep: Sweep): void {
    setTitle(sweep.name || sweep.id);
    setCrumbs([["Projects", "#/"], [`${sweep.entity}/${sweep.project}`, hashFor(["p", sweep.entity, sweep.project])], [`Sweep ${sweep.name || sweep.id}`, null]]);
    head.replaceChildren(h("h1", null, sweep.name || sweep.id), stateBadge(sweep.state), h("span.muted", null, ` ${sweep.id} · ${sweep.method} · ${sweep.entity}/${sweep.project} · created ${fmtTime(sweep.created_at)}`));
    const live = sweep.state === "running" || sweep.state === "paused";
    controls.replaceChildren(
      h("button#sweep-pause", { type: "button", disabled: sweep.state !== "running", onclick: () => void act("paused") }, "Pause"),
      h("button#sweep-resume", { type: "button", disabled: sweep.state !== "paused", onclick: () => void act("running") }, "Resume"),
      h("button#sweep-stop", { type: "button", disabled: !live, title: "Assign no new runs; running runs finish", onclick: () => void act("finished") }, "Stop"),
      h("button#sweep-cancel.danger", { type: "button", disabled: !live, title: "Stop now: running runs are stopped", onclick: () => confirm("Cancel the sweep and stop its running runs?") && void act("canceled") }, "Cancel"),
    );
  }

  function drawAgents(agents: Agent[]): void {
    const now = Date.now() / 1000;
    agentsBox.replaceChildren(
      h("h2#agents-h", null, `Agents (${agents.length})`),
      agents.length
        ? h(
            "table.plain",
            { "aria-label": "Agents" },
            h("thead", null, h("tr", null, ["Agent", "Host", "PID", "State", "Current run", "Runs done", "Heartbeat"].map((c) => h("th", { scope: "col" }, c)))),
            h(
              "tbody",
              null,
              agents.map((a) =>
                h(
                  "tr",
                  null,
                  h("td", null, a.id),
                  h("td", null, a.host ?? ""),
                  h("td.num", null, a.pid ?? ""),
                  h("td", null, stateBadge(a.state)),
                  h("td", null, a.current_run_id ?? ""),
                  h("td.num", null, a.runs_done),
                  h("td", { class: a.state === "running" && now - a.heartbeat_at > 60 ? "stale" : null, title: fmtTime(a.heartbeat_at) }, fmtAgo(a.heartbeat_at)),
                ),
              ),
            ),
          )
        : h("p.muted", null, "No agent has joined. Start one with ", h("code", null, `runyard agent ${sweepId}`), "."),
    );
  }

  function drawAnalysis(sweep: Sweep, trials: Trial[], metric: string | null, goal: string): void {
    const names = paramNames(sweep, trials);
    const values = trials.map((t) => (metric ? objective(t.summary, metric, goal) : null));
    const withValue = values.filter((v): v is number => v !== null);
    const bestIdx = values.reduce<number>((bi, v, i) => (v === null ? bi : bi < 0 || (goal === "maximize" ? v > values[bi]! : v < values[bi]!) ? i : bi), -1);
    const done = trials.filter((t) => FINAL.has(t.state)).length;
    const cap = typeof sweep.config.run_cap === "number" ? sweep.config.run_cap : null;
    const best = bestIdx >= 0 ? trials[bestIdx] : null;
    stats.replaceChildren(
      h("dl.statlist", null,
        h("div", null, h("dt", null, "Runs done"), h("dd#runs-done", null, cap ? `${done} / ${cap}` : `${done} / ${trials.length}`)),
        h("div", null, h("dt", null, "Running"), h("dd", null, String(trials.filter((t) => t.state === "running").length))),
        h("div", null, h("dt", null, "Metric"), h("dd", null, metric ? `${metric} (${goal})` : "none")),
        h("div", null, h("dt", null, "Best run"), h("dd#best-run", null, best ? [h("a", { href: hashFor(["r", sweep.entity, sweep.project, best.run_id]) }, best.name), ` ${fmtNumber(values[bestIdx]!)}`] : "–")),
      ),
    );

    // best so far, in the order the runs were created
    curve?.destroy();
    curve = null;
    curveBox.replaceChildren(h("h2#curve-h", null, "Best so far"));
    if (metric && withValue.length) {
      const xs: number[] = [];
      const raw: number[] = [];
      const bestSoFar: number[] = [];
      let b: number | null = null;
      values.forEach((v, i) => {
        if (v === null) return;
        b = b === null ? v : goal === "maximize" ? Math.max(b, v) : Math.min(b, v);
        xs.push(i + 1);
        raw.push(v);
        bestSoFar.push(b);
      });
      curve = new LineChart(
        [
          { label: metric, color: "#9aa7b8", xs, ys: raw },
          { label: "best so far", color: "#d62728", xs, ys: bestSoFar },
        ],
        { xLabel: "run #", xKind: "step", height: 240 },
      );
      curveBox.append(curve.el);
      curve.draw();
    } else curveBox.append(h("p.muted", null, metric ? "No run has reported the metric yet." : "The sweep has no metric."));

    // parallel coordinates
    pc?.destroy();
    pc = null;
    const tbody = h("tbody");
    const rows = trials.map((t, i) =>
      h(
        "tr",
        { "data-run": t.run_id, class: i === bestIdx ? "best" : null },
        h("td", null, h("a", { href: hashFor(["r", sweep.entity, sweep.project, t.run_id]) }, t.name)),
        h("td", null, stateBadge(t.state)),
        ...names.map((n) => h("td.num", null, fmtValue(t.params?.[n]))),
        h("td.num", null, values[i] === null ? "" : fmtNumber(values[i]!)),
      ),
    );
    tbody.append(...rows);
    const shown = h("span#trials-shown.muted", { "aria-live": "polite" }, `${trials.length} runs`);
    trialsBox.replaceChildren(
      h("h2#trials-h", null, "Runs ", shown),
      h(
        "div.tablewrap",
        null,
        h("table.plain#trials-table", { "aria-label": "Runs of the sweep" }, h("thead", null, h("tr", null, ["Run", "State", ...names, metric ?? "metric"].map((c) => h("th", { scope: "col" }, c)))), tbody),
      ),
    );
    pcBox.replaceChildren(h("h2#pc-h", null, "Parameters and metric ", h("span.muted", null, "(drag on an axis to filter the runs; Escape clears)")));
    if (names.length && trials.length) {
      const declared = (sweep.config.parameters ?? {}) as Doc;
      const axes: PCAxis[] = names.map((n) => ({
        name: n,
        log: isLog(sweep, n),
        categorical: Array.isArray((declared[n] as Doc | undefined)?.values),
        values: trials.map((t) => {
          const v = t.params?.[n];
          return typeof v === "number" ? v : v === undefined || v === null ? null : typeof v === "boolean" ? String(v) : String(v);
        }),
      }));
      if (metric) axes.push({ name: metric, values });
      pc = new ParallelCoordinates(axes, values, (kept) => {
        rows.forEach((r, i) => (r.hidden = !kept[i]));
        shown.textContent = `${kept.filter(Boolean).length} of ${trials.length} runs`;
      }, goal !== "minimize");
      pcBox.append(pc.el);
      pc.draw();
      (window as unknown as { runyardParcoords?: ParallelCoordinates }).runyardParcoords = pc;
    } else pcBox.append(h("p.muted", null, "No runs yet."));

    // scatter of the metric against one parameter
    scatter?.destroy();
    scatter = null;
    scatterBox.replaceChildren(h("h2#scatter-h", null, "Metric against a parameter"));
    if (metric && names.length && withValue.length) {
      const select = h("select#scatter-param", null, names.map((n) => h("option", { value: n }, n)));
      const pointsFor = (n: string) => trials.map((t, i) => ({ x: (t.params?.[n] ?? null) as number | string | null, y: values[i], label: t.name, highlight: i === bestIdx }));
      scatter = new Scatter(pointsFor(names[0]), names[0], metric, isLog(sweep, names[0]));
      select.addEventListener("change", () => scatter?.set(pointsFor(select.value), select.value, isLog(sweep, select.value)));
      scatterBox.append(h("label", { for: "scatter-param" }, "Parameter "), select, scatter.el);
      scatter.draw();
    } else scatterBox.append(h("p.muted", null, "Nothing to plot yet."));
  }

  function objectives(sweep: Sweep): { name: string; goal: string }[] {
    const ms = sweep.config.metrics;
    if (!Array.isArray(ms) || ms.length < 2) return [];
    return ms.map((m) => {
      const d = (m ?? {}) as Doc;
      return { name: String(d.name), goal: d.goal === "maximize" ? "maximize" : "minimize" };
    });
  }

  async function drawFront(sweep: Sweep, trials: Trial[]): Promise<void> {
    const ms = objectives(sweep);
    frontChart?.destroy();
    frontChart = null;
    frontBox.hidden = !ms.length;
    if (!ms.length) return;
    const front = await get<Front>(`/sweeps/${encodeURIComponent(sweepId)}/front`);
    if (disposed) return;
    const onFront = new Set(front.front.map((t) => t.run_id));
    const hv = front.hypervolume === null ? "–" : fmtNumber(front.hypervolume);
    const ref = front.reference ? front.reference.map(fmtNumber).join(", ") : "–";
    frontBox.dataset.front = String(onFront.size);
    const pick = (id: string, chosen: number) => h(`select#${id}`, null, ms.map((m, i) => h("option", { value: String(i), selected: i === chosen }, `${m.name} (${m.goal})`)));
    const xs = pick("pareto-x", 0);
    const ys = pick("pareto-y", 1);
    const pointsFor = (i: number, j: number) =>
      trials.map((t) => ({
        x: objective(t.summary, ms[i].name, ms[i].goal),
        y: objective(t.summary, ms[j].name, ms[j].goal),
        label: `${t.name}${onFront.has(t.run_id) ? " (Pareto front)" : ""}`,
        highlight: onFront.has(t.run_id),
        id: t.run_id,
      }));
    frontChart = new Scatter(pointsFor(0, 1), ms[0].name, ms[1].name);
    const redraw = () => frontChart?.set(pointsFor(Number(xs.value), Number(ys.value)), ms[Number(xs.value)].name, false, ms[Number(ys.value)].name, false);
    xs.addEventListener("change", redraw);
    ys.addEventListener("change", redraw);
    frontBox.replaceChildren(
      h("h2#pareto-h", null, "Pareto front ", h("span.muted", null, `(red: the ${onFront.size} runs no other run beats on every objective)`)),
      h("p#pareto-stats.muted", null, `Hypervolume ${hv} against the reference point (${ref}), over ${front.n} runs with every objective.`),
      h("label", { for: "pareto-x" }, "x "), xs, " ", h("label", { for: "pareto-y" }, "y "), ys,
      frontChart.el,
      h(
        "table.plain#pareto-table",
        { "aria-label": "Runs on the Pareto front" },
        h("thead", null, h("tr", null, ["Run", ...ms.map((m) => m.name)].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", null, front.front.map((t) => h("tr", { "data-run": t.run_id }, h("td", null, h("a", { href: hashFor(["r", sweep.entity, sweep.project, t.run_id]) }, t.name)), ...t.values.map((v) => h("td.num", null, fmtNumber(v)))))),
      ),
    );
    frontChart.draw();
  }

  async function drawImportance(metric: string | null, goal: string): Promise<void> {
    impBox.replaceChildren(h("h2#imp-h", null, "Parameter importance"));
    if (!metric) {
      impBox.append(h("p.muted", null, "The sweep has no metric."));
      return;
    }
    try {
      const imp = await get<Importance>(`/sweeps/${encodeURIComponent(sweepId)}/importance`, { metric, goal });
      if (disposed) return;
      if (!imp.params.length || imp.n < 2) {
        impBox.append(h("p.muted", null, `Needs at least 2 runs with ${metric} (have ${imp.n}).`));
        return;
      }
      const maxImp = Math.max(1e-12, ...imp.params.map((p) => p.importance ?? 0));
      impBox.append(
        h(
          "table.plain.imp#importance-table",
          { "aria-label": `Parameter importance for ${metric}` },
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "Parameter"), h("th", { scope: "col" }, "Importance"), h("th", { scope: "col" }, "Correlation"))),
          h(
            "tbody",
            null,
            imp.params.map((p) => {
              const corr = p.correlation;
              return h(
                "tr",
                { "data-param": p.name },
                h("th", { scope: "row" }, p.name),
                h("td", null, h("span.bar", { style: `width:${(70 * (p.importance ?? 0)) / maxImp}%` }), h("span.barval", null, p.importance === null ? "–" : fmtNumber(Number(p.importance.toFixed(3))))),
                h(
                  "td",
                  { title: p.kind },
                  corr === null ? "–" : h("span", null, h("span.corr", { class: corr >= 0 ? "pos" : "neg", style: `width:${Math.abs(corr) * 60}%` }), h("span.barval", null, fmtNumber(Number(corr.toFixed(3))))),
                ),
              );
            }),
          ),
        ),
        h("p.muted.small", null, `${imp.method} Over ${imp.n} runs.`),
      );
    } catch (err) {
      impBox.append(errorBox(err));
    }
  }

  async function refresh(force = false): Promise<void> {
    const [sweep, trials, agents] = await Promise.all([
      get<Sweep>(`/sweeps/${encodeURIComponent(sweepId)}`),
      get<Trial[]>(`/sweeps/${encodeURIComponent(sweepId)}/runs`),
      get<Agent[]>(`/sweeps/${encodeURIComponent(sweepId)}/agents`).catch(() => [] as Agent[]),
    ]);
    if (disposed) return;
    drawHead(sweep);
    drawAgents(agents);
    const mo = objectives(sweep);
    // a multi-objective sweep: the other panels show its first objective
    const m = (mo.length ? mo[0] : sweep.config.metric ?? null) as Doc | null;
    const metric = m && typeof m.name === "string" ? m.name : null;
    const goal = m && m.goal === "maximize" ? "maximize" : "minimize";
    // Redraw the analysis when runs change (brushes survive polls that change nothing).
    const key = JSON.stringify(trials.map((t) => [t.run_id, t.state, metric ? objective(t.summary, metric, goal) : null, ...mo.map((o) => objective(t.summary, o.name, o.goal))]));
    if (force || key !== lastKey) {
      const changedRuns = key !== lastKey;
      lastKey = key;
      drawAnalysis(sweep, trials, metric, goal);
      if (changedRuns) await Promise.all([drawImportance(metric, goal), drawFront(sweep, trials).catch((err) => frontBox.replaceChildren(errorBox(err)))]);
    }
    if (sweep.state !== "running" && sweep.state !== "paused") window.clearInterval(timer);
    root.dataset.ready = "true";
  }

  refresh().catch((err) => root.replaceChildren(errorBox(err)));
  timer = window.setInterval(() => {
    if (!document.hidden) refresh().catch(() => undefined);
  }, POLL_MS);

  return {
    dispose() {
      disposed = true;
      window.clearInterval(timer);
      pc?.destroy();
      scatter?.destroy();
      curve?.destroy();
      frontChart?.destroy();
    },
  };
}
