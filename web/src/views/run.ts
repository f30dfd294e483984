// A run: every metric charted (sections by key prefix: train/, test/, ...), config as a tree,
// summary, console, files, and metadata (host, program, git, command, Hydra overrides/choices).

import { ApiError, apiKey, fileUrl, get, getBlob, runPath, type Doc, type Json, type Run } from "../api";
import type { View } from "../main";
import { setCrumbs, setTitle } from "../main";
import { LinePanel } from "../panels/line";
import { panelKinds } from "../panels";
import type { PanelInstance, PanelSpec } from "../panels/types";
import { copyText, errorBox, exactValue, fmtDateTime, fmtDuration, fmtNumber, fmtSummary, fmtTime, h, hashFor, isLive, replaceQuery, stateBadge } from "../util";
import { FixedContext } from "../workspace/runs";
import type { LineChart } from "../charts/line";
import { runEditor } from "./runedit";
import { alertsPanel, systemSection } from "./system";

const LIVE_MS = 3000;

export function sectionOf(key: string): string {
  const i = key.indexOf("/");
  return i > 0 ? key.slice(0, i) : "charts";
}

function copyButton(label: string, text: () => string): HTMLElement {
  const btn = h("button.copy", { type: "button", title: `Copy ${label}`, "aria-label": `Copy ${label}` }, "⧉");
  btn.addEventListener("click", async () => {
    await copyText(text());
    btn.textContent = "✓";
    btn.dataset.copied = "true";
    setTimeout(() => (btn.textContent = "⧉"), 1200);
  });
  return btn;
}

/** A nested document as a tree; leaves show their exact value and a copy button. */
export function tree(doc: Json, label?: string, open = true, path = ""): HTMLElement {
  if (doc && typeof doc === "object" && !Array.isArray(doc)) {
    const keys = Object.keys(doc);
    const items = keys.map((k) => {
      const v = doc[k];
      const sub = path ? `${path}.${k}` : k;
      if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) return h("li", null, tree(v, k, open && keys.length < 30, sub));
      const text = exactValue(v);
      return h("li", { "data-key": sub }, h("span.k", null, k), ": ", h("span.v", { title: text }, text), " ", copyButton(sub, () => text));
    });
    const list = h("ul.tree", null, items);
    if (label === undefined) return list;
    return h("details", { open }, h("summary", null, h("span.k", null, label)), list);
  }
  return h("span.v", null, exactValue(doc));
}

function kv(rows: [string, Node | string | null | undefined][]): HTMLElement {
  return h(
    "table.kv",
    null,
    h("tbody", null, rows.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => h("tr", null, h("th", { scope: "row" }, k), h("td", null, v!)))),
  );
}

function metaPanel(run: Run): HTMLElement {
  const m = run.meta as Doc;
  const git = (m.git ?? null) as Doc | null;
  const hydra = (m.hydra ?? null) as Doc | null;
  const args = Array.isArray(m.args) ? (m.args as Json[]).map(String) : [];
  const program = typeof m.program === "string" ? m.program : "";
  const command = [typeof m.executable === "string" ? "python" : "", program, ...args].filter(Boolean).join(" ");
  const out = h("div.meta");
  out.append(
    kv([
      ["Run id", run.run_id],
      ["State", stateBadge(run.state)],
      ["Failure", run.failure],
      ["Exit code", run.exit_code === null ? null : String(run.exit_code)],
      ["Created", fmtDateTime(run.created_at)],
      ["Finished", fmtDateTime(run.finished_at)],
      ["Runtime", fmtDuration(run.runtime)],
      ["Last step", String(run.last_step)],
      ["Group", run.group],
      ["Job type", run.job_type],
      ["Tags", run.tags.join(", ")],
      ["Notes", run.notes],
      ["Sweep", run.sweep_id ? h("a", { href: hashFor(["s", run.sweep_id]) }, run.sweep_id) : null],
      ["Host", run.host ?? (m.host as string | undefined)],
      ["User", m.user as string | undefined],
      ["OS", m.os as string | undefined],
      ["Python", m.python as string | undefined],
      ["Program", program],
      ["Command", command ? h("code", null, command) : null],
      ["Working dir", m.cwd as string | undefined],
      ["Git", git ? h("code", null, `${git.commit ?? ""}${git.branch ? ` (${git.branch})` : ""}${git.dirty ? " dirty" : ""}${git.remote ? ` ${git.remote}` : ""}`) : null],
    ]),
  );
  if (hydra) {
    const overrides = Array.isArray(hydra.overrides) ? (hydra.overrides as Json[]).map(String) : [];
    out.append(
      h("h3", null, "Hydra"),
      kv([
        ["Overrides", overrides.length ? h("code", null, overrides.join(" ")) : "(none)"],
        ["Job", [hydra.job_name, hydra.job_num !== null && hydra.job_num !== undefined ? `#${hydra.job_num}` : ""].filter(Boolean).join(" ")],
        ["Mode", hydra.mode as string | undefined],
        ["Output dir", hydra.output_dir as string | undefined],
        ["Sweep dir", hydra.sweep_dir as string | undefined],
      ]),
      h("h4", null, "Choices"),
      tree((hydra.choices ?? {}) as Json),
    );
  }
  if (run.sweep_params) out.append(h("h3", null, "Sweep parameters"), tree(run.sweep_params));
  return out;
}

/** The refresh interval of a live view: `?refresh=SECONDS` in its URL, else `fallback` ms. */
export function refreshMs(query: URLSearchParams | undefined, fallback: number): number {
  const s = Number(query?.get("refresh") ?? "");
  return Number.isFinite(s) && s > 0 ? Math.max(500, s * 1000) : fallback;
}

export function runView(root: HTMLElement, entity: string, project: string, runId: string, query?: URLSearchParams): View {
  setCrumbs([["Projects", "#/"], [`${entity}/${project}`, hashFor(["p", entity, project])], [runId, null]]);
  setTitle(runId);
  let disposed = false;
  let liveTimer: number | undefined;
  let tickTimer: number | undefined;
  const base = runPath(entity, project, runId);
  const status = h("p.muted", null, "Loading…");
  root.append(status);
  const ctx = new FixedContext(entity, project);
  ctx.opts.x = query?.get("x") || "step_metric"; // each chart against the step metric define_metric gave it
  const panels = new Map<string, { panel: LinePanel; slot: HTMLElement; spec: PanelSpec }>();
  // media keys (images, histograms, tables, ...): panels of their kind, in the same sections
  const mediaPanels = new Map<string, { panel: PanelInstance; slot: HTMLElement; spec: PanelSpec }>();
  const systemCharts: LineChart[] = [];

  const tabs: [string, string][] = [["charts", "Charts"], ["overview", "Overview"], ["config", "Config"], ["summary", "Summary"], ["console", "Console"], ["files", "Files"]];

  function notFound(): void {
    setTitle("Run not found");
    setCrumbs([["Projects", "#/"], [`${entity}/${project}`, hashFor(["p", entity, project])], ["Run not found", null]]);
    status.replaceWith(
      h(
        "div.notfound",
        { role: "alert" },
        h("h1", null, "Run not found"),
        h("p", null, "There is no run ", h("code", null, runId), ` in ${entity}/${project}. The link may have a typo, or the run was logged to another project.`),
        h("p", null, h("a", { href: hashFor(["p", entity, project]) }, `Open ${entity}/${project}`), " · ", h("a", { href: hashFor(["p", entity, project, "runs"]) }, "its runs table"), " · ", h("a", { href: "#/" }, "all projects")),
      ),
    );
  }

  (async () => {
    let run: Run;
    try {
      run = await get<Run>(base);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        notFound();
        return;
      }
      throw err;
    }
    if (disposed) return;
    setTitle(run.name);
    setCrumbs([["Projects", "#/"], [`${entity}/${project}`, hashFor(["p", entity, project])], [run.name, null]]);
    status.remove();
    const sections = new Map<string, HTMLElement>();
    const tablist = h("div.tabs", { role: "tablist", "aria-label": "Run sections" });
    const buttons: HTMLButtonElement[] = [];
    for (const [id, label] of tabs) {
      const btn = h("button", { type: "button", role: "tab", id: `tab-${id}`, "aria-controls": `panel-${id}`, "aria-selected": id === "charts" ? "true" : "false", tabindex: id === "charts" ? 0 : -1 }, label);
      btn.addEventListener("click", () => select(id));
      btn.addEventListener("keydown", (e) => {
        const i = buttons.indexOf(btn);
        if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
          const j = (i + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length;
          select(tabs[j][0]);
          buttons[j].focus();
          e.preventDefault();
        }
      });
      buttons.push(btn);
      tablist.append(btn);
      sections.set(id, h("section.panel", { role: "tabpanel", id: `panel-${id}`, "aria-labelledby": `tab-${id}`, hidden: id !== "charts", tabindex: 0 }));
    }
    function select(id: string): void {
      for (const [pid, panel] of sections) panel.hidden = pid !== id;
      buttons.forEach((b, i) => {
        b.setAttribute("aria-selected", String(tabs[i][0] === id));
        b.tabIndex = tabs[i][0] === id ? 0 : -1;
      });
      if (id === "console") void loadConsole();
      if (id === "files") void loadFiles();
    }

    const stateEl = h("span");
    const meta = h("span.muted#run-meta");
    const runtimeEl = h("span#run-runtime");
    let fetchedAt = Date.now() / 1000;
    function drawHead(): void {
      stateEl.replaceChildren(stateBadge(run.state));
      meta.textContent = `${run.run_id} · ${fmtTime(run.created_at)} · `;
      tickRuntime();
    }
    function tickRuntime(): void {
      // while running, the runtime goes on between two reads of the run
      const extra = isLive(run) ? Math.max(0, Date.now() / 1000 - fetchedAt) : 0;
      runtimeEl.textContent = fmtDuration(run.runtime + extra);
      runtimeEl.dataset.seconds = String(run.runtime + extra);
    }
    let metaEl = metaPanel(run);
    // name, tags and notes edited in place, Stop and Delete (runedit.ts)
    const editor = runEditor(run, (changed) => {
      run = changed;
      setTitle(run.name);
      setCrumbs([["Projects", "#/"], [`${entity}/${project}`, hashFor(["p", entity, project])], [run.name, null]]);
      drawHead();
      const fresh = metaPanel(run);
      metaEl.replaceWith(fresh);
      metaEl = fresh;
    });
    root.append(h("div.runhead", null, editor.title, stateEl, h("span", null, meta, runtimeEl)), editor.bar, tablist, ...sections.values());
    drawHead();
    sections.get("overview")!.append(metaEl, alertsPanel(base));
    const configPanel = sections.get("config")!;
    configPanel.append(
      Object.keys(run.config).length
        ? h("div", null, h("p", null, copyButton("the config as JSON", () => JSON.stringify(run.config, null, 2)), " Copy the whole config as JSON"), tree(run.config))
        : h("p.muted", null, "No config."),
    );
    const summaryPanel = sections.get("summary")!;
    function drawSummary(): void {
      const keys = Object.keys(run.summary).sort();
      summaryPanel.replaceChildren(
        keys.length
          ? h("table.plain#summary-table", { "aria-label": "Summary" }, h("tbody", null, keys.map((k) => h("tr", { "data-key": k }, h("th", { scope: "row" }, k), h("td.num", { title: exactValue(run.summary[k]) }, fmtSummary(k, run.summary[k]))))))
          : h("p.muted", null, "No summary."),
      );
    }
    drawSummary();

    let consoleLoaded = false;
    async function loadConsole(): Promise<void> {
      if (consoleLoaded) return;
      consoleLoaded = true;
      const panel = sections.get("console")!;
      try {
        const res = await get<{ lines: [string, number, string][] }>(base + "/console", { limit: 5000 });
        const pre = h("pre.console", { "aria-label": "Console output" });
        for (const [stream, , text] of res.lines) pre.append(h("span", { class: stream === "stderr" ? "stderr" : null }, text.endsWith("\n") ? text : text + "\n"));
        panel.append(res.lines.length ? pre : h("p.muted", null, "No console output."));
      } catch (err) {
        panel.append(errorBox(err));
      }
    }
    let filesLoaded = false;
    async function loadFiles(): Promise<void> {
      if (filesLoaded) return;
      filesLoaded = true;
      const panel = sections.get("files")!;
      try {
        const files = await get<{ name: string; size: number; updated_at: number }[]>(base + "/files");
        if (!files.length) {
          panel.append(h("p.muted", null, "No files."));
          return;
        }
        panel.append(
          h(
            "table.plain",
            { "aria-label": "Files" },
            h("thead", null, h("tr", null, h("th", { scope: "col" }, "Name"), h("th.num", { scope: "col" }, "Size"), h("th", { scope: "col" }, "Updated"))),
            h(
              "tbody",
              null,
              files.map((f) => {
                const link = h("a", { href: fileUrl(entity, project, runId, f.name), download: f.name.split("/").pop() }, f.name);
                if (apiKey()) {
                  link.addEventListener("click", async (e) => {
                    e.preventDefault();
                    const blob = await getBlob(base + "/files/" + f.name.split("/").map(encodeURIComponent).join("/"));
                    const url = URL.createObjectURL(blob);
                    const a = h("a", { href: url, download: f.name.split("/").pop() });
                    a.click();
                    setTimeout(() => URL.revokeObjectURL(url), 1000);
                  });
                }
                return h("tr", null, h("td", null, link), h("td.num", null, f.size.toLocaleString()), h("td", null, fmtTime(f.updated_at)));
              }),
            ),
          ),
        );
      } catch (err) {
        panel.append(errorBox(err));
      }
    }

    // Charts: one per metric, in sections by prefix, each against the run's step metric for it
    // (define_metric) unless another x axis is chosen; live while the run runs.
    const chartsPanel = sections.get("charts")!;
    const xSelect = h("select#run-x", { "aria-label": "X axis" });
    chartsPanel.append(h("div.toolbar", { role: "group", "aria-label": "Chart settings" }, h("label", { for: "run-x" }, "X axis"), xSelect));
    const chartsBody = h("div#run-charts");
    chartsPanel.append(chartsBody, systemSection(base, systemCharts, () => disposed)); // system metrics below
    ctx.setRuns([run], run.pk);
    let metrics: string[] = [];

    function lastText(slot: HTMLElement, key: string): void {
      const panel = panels.get(key)?.panel;
      const pts = panel?.points(run.run_id);
      if (!pts || !pts.ys.length) {
        slot.dataset.points = "0";
        return;
      }
      const last = pts.ys[pts.ys.length - 1];
      slot.dataset.last = String(last);
      slot.dataset.lastStep = String(pts.steps[pts.steps.length - 1]);
      slot.dataset.points = String(pts.total);
      slot.querySelector(".last")!.textContent = `last ${fmtNumber(last)}${pts.downsampled ? ` · ${pts.total.toLocaleString()} points, downsampled` : ""}`;
    }

    /** The panel kind that claims a key other than "line" (a media key), from its summary. */
    function mediaKindOf(key: string): { kind: string; config: Doc; create: (spec: PanelSpec) => PanelInstance; label: string } | null {
      for (const k of panelKinds()) {
        const config = k.auto?.(key, run.summary[key], run);
        if (!config) continue;
        return k.kind === "line" ? null : { kind: k.kind, config, create: (spec) => k.create(ctx, spec), label: k.label };
      }
      return null;
    }

    function addMedia(key: string, grid: HTMLElement): boolean {
      const kind = mediaKindOf(key);
      if (!kind) return false;
      const spec: PanelSpec = { id: key, kind: kind.kind, w: 1, h: kind.kind === "table" ? 360 : 300, config: kind.config };
      const panel = kind.create(spec);
      const slot = h("figure.chart-panel.media-chart", { "data-metric": key, "data-kind": kind.kind, "aria-label": `${kind.label.split(" (")[0]} of ${key}` }, h("figcaption", null, h("span.title", null, key)), h("div.chart-slot", null, panel.el));
      mediaPanels.set(key, { panel, slot, spec });
      grid.append(slot);
      return true;
    }

    async function drawMedia(only?: Set<string>): Promise<void> {
      await Promise.all(
        [...mediaPanels.entries()]
          .filter(([key]) => !only || only.has(key))
          .map(async ([, { panel, slot }]) => {
            try {
              await panel.update("runs");
              slot.classList.add("drawn");
            } catch (err) {
              slot.querySelector(".chart-slot")!.replaceChildren(errorBox(err));
            }
          }),
      );
    }

    function addChart(key: string, grid: HTMLElement): void {
      if (addMedia(key, grid)) return;
      const spec: PanelSpec = { id: key, kind: "line", w: 1, h: 220, config: { key } };
      const slot = h("figure.chart-panel", { "data-metric": key, "aria-label": `Chart of ${key}` }, h("figcaption", null, h("span.title", null, key), h("span.last.muted", null, "")), h("div.chart-slot"));
      const panel = new LinePanel(ctx, spec);
      slot.querySelector(".chart-slot")!.append(panel.el);
      panels.set(key, { panel, slot, spec });
      grid.append(slot);
    }

    async function drawCharts(): Promise<void> {
      chartsPanel.dataset.ready = "false";
      const media = drawMedia();
      await Promise.all(
        [...panels.entries()].map(async ([key, { panel, slot }]) => {
          try {
            await panel.update("runs");
            lastText(slot, key);
            slot.classList.toggle("drawn", panel.el.classList.contains("drawn"));
            slot.dataset.series = panel.el.dataset.series ?? "0";
            slot.dataset.x = panel.xAxes().join(",");
          } catch (err) {
            slot.querySelector(".chart-slot")!.replaceChildren(errorBox(err));
          }
        }),
      );
      await media;
      chartsPanel.dataset.ready = "true";
    }

    function layoutCharts(): void {
      const bySection = new Map<string, string[]>();
      for (const k of metrics) {
        const s = sectionOf(k);
        if (!bySection.has(s)) bySection.set(s, []);
        bySection.get(s)!.push(k);
      }
      const order = [...bySection.keys()].sort((a, b) => (a === "charts" ? -1 : b === "charts" ? 1 : a.localeCompare(b)));
      for (const s of order) {
        let grid = chartsBody.querySelector<HTMLElement>(`[data-section="${CSS.escape(s)}"] .chart-grid`);
        if (!grid) {
          grid = h("div.chart-grid");
          const details = h("details.section", { open: true, "data-section": s }, h("summary", null, h("h2", null, s), " ", h("span.muted.count")), grid);
          // keep the sections in order
          const after = [...chartsBody.querySelectorAll<HTMLElement>("[data-section]")].find((el) => order.indexOf(el.dataset.section!) > order.indexOf(s));
          chartsBody.insertBefore(details, after ?? null);
        }
        for (const k of bySection.get(s)!) if (!panels.has(k) && !mediaPanels.has(k)) addChart(k, grid);
        grid.closest("details")!.querySelector(".count")!.textContent = `(${bySection.get(s)!.length})`;
      }
    }

    metrics = (await get<string[]>(base + "/metrics")).filter((k) => !k.startsWith("_"));
    if (disposed) return;
    ctx.projectKeys = { config: [], summary: Object.keys(run.summary), metrics };
    const xOptions: [string, string][] = [["step_metric", "Step metric (define_metric) or step"], ["_step", "Step"], ["_runtime", "Relative time"], ["_timestamp", "Wall time"], ...metrics.map((m): [string, string] => [m, m])];
    xSelect.replaceChildren(...xOptions.map(([v, label]) => h("option", { value: v, selected: v === ctx.opts.x }, label)));
    xSelect.addEventListener("change", () => {
      ctx.opts.x = xSelect.value;
      replaceQuery({ x: ctx.opts.x !== "step_metric" ? ctx.opts.x : null, refresh: query?.get("refresh") });
      void drawCharts();
    });
    if (!metrics.length) chartsBody.append(h("p.muted#no-metrics", null, "No metrics logged."));
    layoutCharts();
    await drawCharts();

    // live: the run's state, runtime and summary, the new points of every chart, new metrics
    async function live(): Promise<void> {
      if (disposed || document.hidden || !isLive(run)) return;
      try {
        const fresh = await get<Run>(base);
        if (disposed) return;
        run = fresh;
        fetchedAt = Date.now() / 1000;
        ctx.setRuns([run], run.pk);
        drawHead();
        editor.update(run);
        drawSummary();
        const names = (await get<string[]>(base + "/metrics")).filter((k) => !k.startsWith("_"));
        if (names.length !== metrics.length) {
          metrics = names;
          ctx.projectKeys.metrics = metrics;
          chartsBody.querySelector("#no-metrics")?.remove();
          layoutCharts();
        }
        // media panels: a key whose summary changed logged again (new steps for the slider)
        const grown = new Set([...mediaPanels.keys()].filter((k) => JSON.stringify(fresh.summary[k]) !== lastMedia.get(k)));
        for (const k of mediaPanels.keys()) lastMedia.set(k, JSON.stringify(fresh.summary[k]));
        if (grown.size) await drawMedia(grown);
        const changed = await ctx.series.live([run.run_id]);
        for (const [key, { panel, slot }] of panels) {
          if (!changed.has(key) && panel.el.classList.contains("drawn")) continue;
          await panel.update("runs");
          lastText(slot, key);
          slot.classList.toggle("drawn", panel.el.classList.contains("drawn"));
          slot.dataset.series = panel.el.dataset.series ?? "0";
        }
        chartsPanel.dataset.live = String(Number(chartsPanel.dataset.live ?? "0") + 1);
      } catch {
        /* the next tick */
      }
    }
    const lastMedia = new Map([...mediaPanels.keys()].map((k) => [k, JSON.stringify(run.summary[k])]));
    if (isLive(run)) {
      liveTimer = window.setInterval(() => void live(), refreshMs(query, LIVE_MS));
      tickTimer = window.setInterval(tickRuntime, 1000);
    }
  })().catch((err) => {
    status.replaceWith(errorBox(err));
  });

  return {
    dispose() {
      disposed = true;
      window.clearInterval(liveTimer);
      window.clearInterval(tickTimer);
      for (const { panel } of panels.values()) panel.destroy();
      for (const { panel } of mediaPanels.values()) panel.destroy();
      for (const c of systemCharts) c.destroy();
    },
  };
}
