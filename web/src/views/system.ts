// The run page's "System" section (system metrics, GET .../system) and the alerts list of its
// overview (GET .../alerts). Kept in its own module: run.ts only places the two elements.
//
// Metrics that differ only by a device index (system.cpu.0.cpu_percent, system.cpu.1...;
// system.gpu.0.temp, system.gpu.1.temp) share one chart with a line per device, as in W&B.

import { get, pool } from "../api";
import { LineChart } from "../charts/line";
import { color, errorBox, fmtNumber, fmtTime, h } from "../util";

export interface SystemRows {
  rows: Record<string, number | null>[];
  keys: string[];
  total: number;
  downsampled: boolean;
}

export interface Alert {
  id: number;
  title: string;
  text: string;
  level: "INFO" | "WARN" | "ERROR";
  wait_duration: number;
  timestamp: number;
  runtime: number;
  delivery: string;
  attempts: number;
  sent_at: number | null;
  error: string | null;
}

const SAMPLES = 500;

// W&B's chart titles for its system metric names (the part after "system.", devices as *).
const TITLES: Record<string, string> = {
  cpu: "Process CPU Utilization (%)",
  "cpu.*.cpu_percent": "CPU Core Utilization (%)",
  "proc.cpu.threads": "Process CPU Threads In Use",
  "proc.memory.rssMB": "Process Memory In Use (MB)",
  "proc.memory.percent": "Process Memory In Use (%)",
  "proc.memory.availableMB": "Process Memory Available (MB)",
  memory_percent: "System Memory Utilization (%)",
  "disk./.usagePercent": "Disk Utilization (%)",
  "disk./.usageGB": "Disk Utilization (GB)",
  "disk.in": "Disk I/O Read (MB)",
  "disk.out": "Disk I/O Written (MB)",
  "network.sent": "Network Traffic Sent (bytes)",
  "network.recv": "Network Traffic Received (bytes)",
  "gpu.*.gpu": "GPU Utilization (%)",
  "gpu.*.memory": "GPU Time Spent Accessing Memory (%)",
  "gpu.*.memoryAllocated": "GPU Memory Allocated (%)",
  "gpu.*.memoryAllocatedBytes": "GPU Memory Allocated (bytes)",
  "gpu.*.temp": "GPU Temp (°C)",
  "gpu.*.powerWatts": "GPU Power Usage (W)",
  "gpu.*.enforcedPowerLimitWatts": "GPU Power Limit (W)",
  "gpu.*.powerPercent": "GPU Power Usage (%)",
  "gpu.process.*.gpu": "Process GPU Utilization (%)",
  "gpu.process.*.memoryAllocated": "Process GPU Memory Allocated (%)",
  "gpu.process.*.temp": "Process GPU Temp (°C)",
  "gpu.process.*.powerWatts": "Process GPU Power Usage (W)",
};

/** ``system.gpu.1.temp`` → ``["gpu.*.temp", "1"]``; keys without a device index stay whole. */
export function chartKey(key: string): [string, string | null] {
  const name = key.startsWith("system.") ? key.slice(7) : key;
  const m = /^(.*?)\.(\d+)\.(.+)$/.exec(name);
  if (!m || m[1].startsWith("disk")) return [name, null];
  return [`${m[1]}.*.${m[3]}`, m[2]];
}

/** The "System" section: a chart per metric (per device group), x = the run's runtime. */
export function systemSection(base: string, charts: LineChart[], disposed: () => boolean): HTMLElement {
  const grid = h("div.chart-grid");
  const heading = h("h2", null, "System");
  const section = h("details.section.system-section", { open: true, "data-system": "loading" }, h("summary", null, heading), grid);
  void (async () => {
    try {
      const res = await get<SystemRows>(base + "/system", { samples: SAMPLES });
      if (disposed()) return;
      const groups = new Map<string, { device: string | null; key: string }[]>();
      for (const key of res.keys) {
        const [group, device] = chartKey(key);
        if (!groups.has(group)) groups.set(group, []);
        groups.get(group)!.push({ device, key });
      }
      heading.textContent = `System (${groups.size})`;
      if (!groups.size) {
        grid.append(h("p.muted", null, "No system metrics: they are off for this run, or it ended before the first sample (every 15 s by default)."));
        section.dataset.system = "empty";
        return;
      }
      const order = [...groups.keys()].sort((a, b) => a.localeCompare(b));
      await pool(
        order.map((group, gi) => async () => {
          const members = groups.get(group)!;
          members.sort((a, b) => Number(a.device ?? 0) - Number(b.device ?? 0));
          const series = members.map((m, i) => {
            const xs: number[] = [];
            const ys: number[] = [];
            for (const row of res.rows) {
              const v = row[m.key];
              if (typeof v === "number") {
                xs.push(row._runtime as number);
                ys.push(v);
              }
            }
            return { label: m.device === null ? group : `${group.split(".")[0]} ${m.device}`, color: color(members.length > 1 ? i : gi), xs, ys };
          });
          const last = series.map((s) => (s.ys.length ? fmtNumber(s.ys[s.ys.length - 1]) : "")).join(" · ");
          const slot = h("figure.chart-panel.system-chart", { "data-system-metric": group, "data-series": String(series.length), "aria-label": `System chart of ${group}` }, h("figcaption", null, h("span.title", null, TITLES[group] ?? `system.${group}`), h("span.last.muted", null, `last ${last}`)));
          grid.append(slot);
          const chart = new LineChart(series, { xLabel: "runtime (s)" });
          charts.push(chart);
          slot.append(chart.el);
          chart.draw();
          slot.dataset.drawn = "true";
        }),
        4,
      );
      section.dataset.system = "ready";
      section.dataset.samples = String(res.total);
    } catch (err) {
      grid.append(errorBox(err));
      section.dataset.system = "error";
    }
  })();
  return section;
}

const DELIVERY: Record<string, string> = {
  pending: "not sent yet",
  suppressed: "not sent (same title within wait_duration)",
  sent: "sent",
  failed: "webhook failed",
  expired: "not sent (expired)",
};

/** The run's alerts, newest first, for the overview. */
export function alertsPanel(base: string): HTMLElement {
  const out = h("div.alerts", { "data-alerts": "loading" }, h("h3", null, "Alerts"));
  void (async () => {
    try {
      const { alerts } = await get<{ alerts: Alert[] }>(base + "/alerts");
      if (!alerts.length) {
        out.append(h("p.muted", null, "No alerts (run.alert)."));
      } else {
        out.append(
          h(
            "table.plain#alerts-table",
            { "aria-label": "Alerts" },
            h("thead", null, h("tr", null, ["Time", "Level", "Title", "Text", "Webhook"].map((c) => h("th", { scope: "col" }, c)))),
            h(
              "tbody",
              null,
              [...alerts].reverse().map((a) =>
                h(
                  "tr",
                  { "data-alert": a.title, "data-level": a.level, "data-delivery": a.delivery },
                  h("td", null, fmtTime(a.timestamp)),
                  h(`td.alert-level.level-${a.level.toLowerCase()}`, null, a.level),
                  h("td", null, a.title),
                  h("td.alert-text", null, a.text),
                  h("td", { title: a.error ?? "" }, DELIVERY[a.delivery] ?? a.delivery),
                ),
              ),
            ),
          ),
        );
      }
      out.dataset.alerts = String(alerts.length);
    } catch (err) {
      out.append(errorBox(err));
      out.dataset.alerts = "error";
    }
  })();
  return out;
}
