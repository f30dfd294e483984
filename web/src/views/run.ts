// A run: every metric charted (sections by key prefix: train/, test/, ...), config as a tree,
// summary, console, files, and metadata (host, program, git, command, Hydra overrides/choices).

import { apiKey, fileUrl, get, getBlob, pool, runPath, type Doc, type Json, type Run, type Series } from "../api";
import { LineChart } from "../charts/line";
import type { View } from "../main";
import { setCrumbs, setTitle } from "../main";
import { color, errorBox, fmtDuration, fmtNumber, fmtTime, fmtValue, h, hashFor, stateBadge } from "../util";
import { alertsPanel, systemSection } from "./system";

const SAMPLES = 1000;

export function sectionOf(key: string): string {
  const i = key.indexOf("/");
  return i > 0 ? key.slice(0, i) : "charts";
}

export function tree(doc: Json, label?: string, open = true): HTMLElement {
  if (doc && typeof doc === "object" && !Array.isArray(doc)) {
    const keys = Object.keys(doc);
    const items = keys.map((k) => {
      const v = doc[k];
      if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) return h("li", null, tree(v, k, open && keys.length < 30));
      return h("li", null, h("span.k", null, k), ": ", h("span.v", null, fmtValue(v)));
    });
    const list = h("ul.tree", null, items);
    if (label === undefined) return list;
    return h("details", { open }, h("summary", null, h("span.k", null, label)), list);
  }
  return h("span.v", null, fmtValue(doc));
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
      ["Created", fmtTime(run.created_at)],
      ["Finished", fmtTime(run.finished_at)],
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

export function runView(root: HTMLElement, entity: string, project: string, runId: string): View {
  setCrumbs([["Projects", "#/"], [`${entity}/${project}`, hashFor(["p", entity, project])], [runId, null]]);
  setTitle(runId);
  const charts: LineChart[] = [];
  let disposed = false;
  const base = runPath(entity, project, runId);
  const status = h("p.muted", null, "Loading…");
  root.append(status);

  const tabs: [string, string][] = [["charts", "Charts"], ["overview", "Overview"], ["config", "Config"], ["summary", "Summary"], ["console", "Console"], ["files", "Files"]];

  (async () => {
    const run = await get<Run>(base);
    if (disposed) return;
    setTitle(run.name);
    setCrumbs([["Projects", "#/"], [`${entity}/${project}`, hashFor(["p", entity, project])], [run.name, null]]);
    status.remove();
    const panels = new Map<string, HTMLElement>();
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
      panels.set(id, h("section.panel", { role: "tabpanel", id: `panel-${id}`, "aria-labelledby": `tab-${id}`, hidden: id !== "charts", tabindex: 0 }));
    }
    function select(id: string): void {
      for (const [pid, panel] of panels) panel.hidden = pid !== id;
      buttons.forEach((b, i) => {
        b.setAttribute("aria-selected", String(tabs[i][0] === id));
        b.tabIndex = tabs[i][0] === id ? 0 : -1;
      });
      if (id === "console") void loadConsole();
      if (id === "files") void loadFiles();
    }

    root.append(
      h("div.runhead", null, h("h1", null, run.name), stateBadge(run.state), h("span.muted", null, `${run.run_id} · ${fmtTime(run.created_at)} · ${fmtDuration(run.runtime)}`)),
      tablist,
      ...panels.values(),
    );
    panels.get("overview")!.append(metaPanel(run), alertsPanel(base));
    panels.get("config")!.append(Object.keys(run.config).length ? tree(run.config) : h("p.muted", null, "No config."));
    const summaryKeys = Object.keys(run.summary).sort();
    panels.get("summary")!.append(
      summaryKeys.length
        ? h("table.plain#summary-table", { "aria-label": "Summary" }, h("tbody", null, summaryKeys.map((k) => h("tr", null, h("th", { scope: "row" }, k), h("td.num", null, fmtValue(run.summary[k]))))))
        : h("p.muted", null, "No summary."),
    );

    let consoleLoaded = false;
    async function loadConsole(): Promise<void> {
      if (consoleLoaded) return;
      consoleLoaded = true;
      const panel = panels.get("console")!;
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
      const panel = panels.get("files")!;
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

    // Charts: one per metric, grouped in sections by prefix.
    const chartsPanel = panels.get("charts")!;
    const system = systemSection(base, charts, () => disposed); // below the metrics' sections
    const metrics = (await get<string[]>(base + "/metrics")).filter((k) => !k.startsWith("_"));
    if (disposed) return;
    if (!metrics.length) {
      chartsPanel.append(h("p.muted", null, "No metrics logged."), system);
      return;
    }
    const sections = new Map<string, string[]>();
    for (const k of metrics) {
      const s = sectionOf(k);
      if (!sections.has(s)) sections.set(s, []);
      sections.get(s)!.push(k);
    }
    const order = [...sections.keys()].sort((a, b) => (a === "charts" ? -1 : b === "charts" ? 1 : a.localeCompare(b)));
    const slots = new Map<string, HTMLElement>();
    for (const s of order) {
      const grid = h("div.chart-grid");
      for (const k of sections.get(s)!) {
        const slot = h("figure.chart-panel", { "data-metric": k, "aria-label": `Chart of ${k}` }, h("figcaption", null, h("span.title", null, k), h("span.last.muted", null, "")), h("div.chart-slot", null, h("p.muted", null, "…")));
        slots.set(k, slot);
        grid.append(slot);
      }
      chartsPanel.append(h("details.section", { open: true, "data-section": s }, h("summary", null, h("h2", null, `${s} (${sections.get(s)!.length})`)), grid));
    }
    chartsPanel.append(system);
    await pool(
      metrics.map((k, i) => async () => {
        const slot = slots.get(k)!;
        try {
          const s = await get<Series>(base + "/series", { key: k, samples: SAMPLES });
          if (disposed) return;
          const area = slot.querySelector(".chart-slot")!;
          if (!s.steps.length) {
            area.replaceChildren(h("p.muted", null, "No numeric values."));
            slot.dataset.points = "0";
            return;
          }
          const last = s.values[s.values.length - 1];
          slot.dataset.last = String(last);
          slot.dataset.points = String(s.total);
          slot.querySelector(".last")!.textContent = `last ${fmtNumber(last)}${s.downsampled ? ` · ${s.total.toLocaleString()} points, downsampled` : ""}`;
          const chart = new LineChart([{ label: k, color: color(i), xs: s.steps, ys: s.values }], { xLabel: "step" });
          charts.push(chart);
          area.replaceChildren(chart.el);
          chart.draw();
          slot.classList.add("drawn");
        } catch (err) {
          slot.querySelector(".chart-slot")!.replaceChildren(errorBox(err));
        }
      }),
    );
    chartsPanel.dataset.ready = "true";
  })().catch((err) => {
    status.replaceWith(errorBox(err));
  });

  return {
    dispose() {
      disposed = true;
      for (const c of charts) c.destroy();
    },
  };
}
