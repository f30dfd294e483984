// The Artifacts view: a project's artifacts by type, a name's versions (aliases, size, creator,
// digest, metadata), the file tree of a version with previews (text, images, JSON, tables), a
// diff of two versions' manifests and the lineage graph (runs and versions, run pages linked).
//
//   #/a/{entity}/{project}                         artifacts of the project
//   #/a/{entity}/{project}/{name}?v=vN&diff=vM     one artifact: versions, files, diff, lineage

import "./artifacts.css";
import { get, getBlob } from "../api";
import type { View } from "../main";
import { setCrumbs, setTitle } from "../main";
import { errorBox, fmtBytes, fmtTime, h, hashFor, replaceQuery } from "../util";

interface Collection {
  entity: string;
  project: string;
  name: string;
  type: string;
  description: string | null;
  created_at: number;
  version_count: number;
  latest: number | null;
}

interface Entry {
  digest: string;
  size: number;
  blob?: string;
  ref?: string;
  extra?: Record<string, unknown>;
}

interface Version {
  id: number;
  entity: string;
  project: string;
  name: string;
  type: string;
  version: number;
  digest: string;
  size: number;
  file_count: number;
  metadata: Record<string, unknown>;
  description: string | null;
  aliases: string[];
  created_by: string | null;
  created_at: number;
  source: string | null;
  contents?: Record<string, Entry>;
}

interface RunRef {
  entity: string;
  project: string;
  run_id: string;
}

const enc = encodeURIComponent;
const PREVIEW_LIMIT = 5 * 1024 * 1024;

function runLink(r: RunRef): HTMLElement {
  return h("a", { href: hashFor(["r", r.entity, r.project, r.run_id]) }, r.run_id);
}

function aliasBadges(aliases: string[]): HTMLElement[] {
  return aliases.map((a) => h("span.badge", { "data-alias": a }, a));
}

export function artifactsView(root: HTMLElement, entity: string, project: string): View {
  setCrumbs([["Projects", "#/"], [`${entity}/${project}`, hashFor(["p", entity, project])], ["Artifacts", null]]);
  setTitle(`Artifacts · ${project}`);
  const body = h("div", null, h("p.muted", null, "Loading…"));
  root.append(h("h1", null, `Artifacts of ${entity}/${project}`), body);
  get<Collection[]>(`/artifacts/${enc(entity)}/${enc(project)}`)
    .then((items) => {
      if (!items.length) {
        body.replaceChildren(h("p.muted", null, "No artifacts yet. Log one with run.log_artifact(runyard.Artifact(name, type)) and it appears here."));
        return;
      }
      const types = [...new Set(items.map((c) => c.type))].sort();
      body.replaceChildren(
        ...types.map((t) =>
          h(
            "section",
            { "aria-label": `type ${t}` },
            h("h2", null, t),
            h(
              "table.plain",
              { "aria-label": `Artifacts of type ${t}` },
              h("thead", null, h("tr", null, ["Name", "Versions", "Latest", "Created"].map((c) => h("th", { scope: "col" }, c)))),
              h(
                "tbody",
                null,
                items
                  .filter((c) => c.type === t)
                  .map((c) =>
                    h(
                      "tr",
                      null,
                      h("td", null, h("a", { href: hashFor(["a", entity, project, c.name]) }, c.name)),
                      h("td.num", null, c.version_count),
                      h("td", null, c.latest === null ? "-" : `v${c.latest}`),
                      h("td", null, fmtTime(c.created_at)),
                    ),
                  ),
              ),
            ),
          ),
        ),
      );
    })
    .catch((e) => body.replaceChildren(errorBox(e)));
  return {};
}

export function artifactView(root: HTMLElement, entity: string, project: string, name: string, query: URLSearchParams): View {
  setCrumbs([
    ["Projects", "#/"],
    [`${entity}/${project}`, hashFor(["p", entity, project])],
    ["Artifacts", hashFor(["a", entity, project])],
    [name, null],
  ]);
  setTitle(`${name} · artifacts`);
  const base = `/artifacts/${enc(entity)}/${enc(project)}/${enc(name)}`;
  const versionsBox = h("div", null, h("p.muted", null, "Loading…"));
  const detail = h("div");
  root.append(h("h1", null, name), versionsBox, detail);
  let selected = query.get("v") || "latest";
  let diffWith = query.get("diff");
  let versions: Version[] = [];
  const objectUrls: string[] = [];

  function render(): void {
    replaceQuery({ v: selected, diff: diffWith });
    versionsBox.replaceChildren(versionsTable());
    detail.replaceChildren(h("p.muted", null, "Loading…"));
    get<Version>(`${base}/versions/${enc(selected)}`)
      .then((v) => showVersion(v))
      .catch((e) => detail.replaceChildren(errorBox(e)));
  }

  function isSelected(v: Version): boolean {
    return selected === `v${v.version}` || v.aliases.includes(selected);
  }

  function versionsTable(): HTMLElement {
    return h(
      "table.plain",
      { "aria-label": "Versions" },
      h("thead", null, h("tr", null, ["Version", "Aliases", "Size", "Files", "Created by", "Digest", "Created"].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        null,
        versions.map((v) =>
          h(
            "tr.art-version-row",
            { "aria-selected": isSelected(v) ? "true" : "false", "data-version": `v${v.version}` },
            h(
              "td",
              null,
              h(
                "a",
                {
                  href: hashFor(["a", entity, project, name], { v: `v${v.version}`, diff: diffWith }),
                  onclick: (ev: Event) => {
                    ev.preventDefault();
                    selected = `v${v.version}`;
                    render();
                  },
                },
                `v${v.version}`,
              ),
            ),
            h("td", null, aliasBadges(v.aliases)),
            h("td.num", null, fmtBytes(v.size)),
            h("td.num", null, v.file_count),
            h("td", null, v.created_by ? runLink({ entity, project, run_id: v.created_by }) : "-"),
            h("td.mono", { title: v.digest }, v.digest.slice(0, 12)),
            h("td", null, fmtTime(v.created_at)),
          ),
        ),
      ),
    );
  }

  function showVersion(v: Version): void {
    const contents = v.contents ?? {};
    const preview = h("div.art-preview", { "aria-live": "polite" }, h("p.muted", null, "Choose a file to preview it."));
    const diffBox = h("div.art-diff");
    const lineage = h("div.art-lineage", null, h("p.muted", null, "Loading lineage…"));
    const others = versions.filter((o) => o.version !== v.version);
    const diffSelect = h(
      "select",
      {
        "aria-label": "Compare with version",
        onchange: (ev: Event) => {
          diffWith = (ev.target as HTMLSelectElement).value || null;
          replaceQuery({ v: selected, diff: diffWith });
          showDiff(v, diffBox);
        },
      },
      h("option", { value: "" }, "—"),
      others.map((o) => h("option", { value: `v${o.version}`, selected: diffWith === `v${o.version}` }, `v${o.version}`)),
    );
    detail.replaceChildren(
      h("h2", null, `${v.name}:v${v.version}`, " ", ...aliasBadges(v.aliases)),
      h(
        "dl.art-facts",
        null,
        h("dt", null, "Type"),
        h("dd", null, v.type),
        h("dt", null, "Size"),
        h("dd", null, `${fmtBytes(v.size)} in ${v.file_count} file(s)`),
        h("dt", null, "Digest"),
        h("dd.mono", null, v.digest),
        h("dt", null, "Created by"),
        h("dd", null, v.created_by ? runLink({ entity, project, run_id: v.created_by }) : "-"),
        v.source ? [h("dt", null, "Links"), h("dd", null, v.source)] : null,
        v.description ? [h("dt", null, "Description"), h("dd", null, v.description)] : null,
      ),
      h("h3", null, "Metadata"),
      Object.keys(v.metadata).length ? h("pre.mono", { "aria-label": "Metadata" }, JSON.stringify(v.metadata, null, 2)) : h("p.muted", null, "none"),
      h("div.art-grid", null, h("div", null, h("h3", null, "Files"), fileTree(v, contents, preview)), h("div", null, h("h3", null, "Preview"), preview)),
      h("h3", null, "Compare with ", diffSelect),
      diffBox,
      h("h3", null, "Lineage"),
      lineage,
    );
    if (diffWith) showDiff(v, diffBox);
    showLineage(v, lineage);
  }

  function fileTree(v: Version, contents: Record<string, Entry>, preview: HTMLElement): HTMLElement {
    type Node = { dirs: Map<string, Node>; files: [string, string, Entry][] };
    const top: Node = { dirs: new Map(), files: [] };
    for (const path of Object.keys(contents).sort()) {
      const parts = path.split("/");
      let node = top;
      for (const dir of parts.slice(0, -1)) {
        if (!node.dirs.has(dir)) node.dirs.set(dir, { dirs: new Map(), files: [] });
        node = node.dirs.get(dir)!;
      }
      node.files.push([parts[parts.length - 1], path, contents[path]]);
    }
    const buttons: HTMLButtonElement[] = [];
    function list(node: Node): HTMLElement {
      return h(
        "ul",
        null,
        [...node.dirs.entries()].map(([dir, child]) => h("li", null, h("details", { open: true }, h("summary", null, `${dir}/`), list(child)))),
        node.files.map(([label, path, entry]) => {
          const button = h(
            "button.file",
            {
              type: "button",
              "aria-pressed": "false",
              "data-path": path,
              onclick: () => {
                buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
                showPreview(v, path, entry, preview);
              },
            },
            label,
          );
          buttons.push(button);
          return h("li", null, button, h("span.size", null, entry.ref ? `reference ${entry.ref}` : fmtBytes(entry.size)));
        }),
      );
    }
    return h("nav.art-tree", { "aria-label": "Files" }, list(top));
  }

  function showPreview(v: Version, path: string, entry: Entry, box: HTMLElement): void {
    if (!entry.blob) {
      box.replaceChildren(h("p", null, `A reference, tracked by its checksum and not stored here: ${entry.ref ?? ""}`));
      return;
    }
    if (entry.size > PREVIEW_LIMIT) {
      box.replaceChildren(h("p.muted", null, `${fmtBytes(entry.size)}: too large to preview (download it with runyard artifact get).`));
      return;
    }
    box.replaceChildren(h("p.muted", null, "Loading…"));
    getBlob(`/artifacts/${enc(v.entity)}/blobs/${entry.blob}`)
      .then(async (blob) => {
        const lower = path.toLowerCase();
        if (/\.(png|jpe?g|gif|webp|bmp|svg)$/.test(lower)) {
          const type = lower.endsWith(".svg") ? "image/svg+xml" : blob.type;
          const url = URL.createObjectURL(new Blob([blob], { type }));
          objectUrls.push(url);
          box.replaceChildren(h("img", { src: url, alt: path }));
          return;
        }
        const text = await blob.text();
        if (lower.endsWith(".json")) {
          try {
            const doc = JSON.parse(text);
            if (doc && Array.isArray(doc.columns) && Array.isArray(doc.data)) {
              box.replaceChildren(tablePreview(doc.columns.map(String), doc.data as unknown[][]));
              return;
            }
            box.replaceChildren(h("pre.mono", { "aria-label": `Preview of ${path}` }, JSON.stringify(doc, null, 2)));
            return;
          } catch {
            /* shown as text below */
          }
        }
        if (/\.(csv|tsv)$/.test(lower)) {
          const sep = lower.endsWith(".tsv") ? "\t" : ",";
          const rows = text.split(/\r?\n/).filter((l) => l.length).map((l) => l.split(sep));
          box.replaceChildren(tablePreview(rows[0] ?? [], rows.slice(1)));
          return;
        }
        if (text.includes("\u0000")) {
          box.replaceChildren(h("p.muted", null, `Binary file, ${fmtBytes(entry.size)}.`));
          return;
        }
        box.replaceChildren(h("pre.mono", { "aria-label": `Preview of ${path}` }, text));
      })
      .catch((e) => box.replaceChildren(errorBox(e)));
  }

  function tablePreview(columns: string[], rows: unknown[][]): HTMLElement {
    const shown = rows.slice(0, 200);
    return h(
      "div",
      null,
      h(
        "table.plain",
        { "aria-label": "Table preview" },
        h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", null, shown.map((r) => h("tr", null, r.map((c) => h("td", null, typeof c === "object" ? JSON.stringify(c) : String(c)))))),
      ),
      rows.length > shown.length ? h("p.muted", null, `first ${shown.length} of ${rows.length} rows`) : null,
    );
  }

  function showDiff(v: Version, box: HTMLElement): void {
    if (!diffWith) {
      box.replaceChildren();
      return;
    }
    box.replaceChildren(h("p.muted", null, "Loading…"));
    get<Version>(`${base}/versions/${enc(diffWith)}`)
      .then((other) => {
        const a = other.contents ?? {};
        const b = v.contents ?? {};
        const paths = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
        const rows: HTMLElement[] = [];
        for (const p of paths) {
          const before = a[p];
          const after = b[p];
          let kind = "";
          if (!before) kind = "added";
          else if (!after) kind = "removed";
          else if (before.digest !== after.digest) kind = "changed";
          if (!kind) continue;
          rows.push(
            h(
              "tr",
              { class: kind, "data-kind": kind },
              h("td", null, kind),
              h("td.mono", null, p),
              h("td.num", null, before ? fmtBytes(before.size) : "-"),
              h("td.num", null, after ? fmtBytes(after.size) : "-"),
            ),
          );
        }
        box.replaceChildren(
          rows.length
            ? h(
                "table.plain",
                { "aria-label": `Changes from ${diffWith} to v${v.version}` },
                h("thead", null, h("tr", null, ["Change", "Path", diffWith!, `v${v.version}`].map((c) => h("th", { scope: "col" }, c)))),
                h("tbody", null, rows),
              )
            : h("p", null, `v${v.version} has the same files as ${diffWith}.`),
        );
      })
      .catch((e) => box.replaceChildren(errorBox(e)));
  }

  function showLineage(v: Version, box: HTMLElement): void {
    const producer = v.created_by ? { entity, project, run_id: v.created_by } : null;
    const inputs = producer
      ? get<{ used: Version[] }>(`/runs/${enc(entity)}/${enc(project)}/${enc(producer.run_id)}/artifacts`).then((d) => d.used)
      : Promise.resolve([] as Version[]);
    Promise.all([inputs, get<RunRef[]>(`${base}/versions/v${v.version}/usage`)])
      .then(([used, consumers]) => box.replaceChildren(lineageGraph(v, used, producer, consumers)))
      .catch((e) => box.replaceChildren(errorBox(e)));
  }

  function lineageGraph(v: Version, inputs: Version[], producer: RunRef | null, consumers: RunRef[]): HTMLElement {
    const NS = "http://www.w3.org/2000/svg";
    const columns: { label: string; href: string; kind: string }[][] = [
      inputs.map((i) => ({ label: `${i.name}:v${i.version}`, href: hashFor(["a", i.entity, i.project, i.name], { v: `v${i.version}` }), kind: "artifact" })),
      producer ? [{ label: `run ${producer.run_id}`, href: hashFor(["r", producer.entity, producer.project, producer.run_id]), kind: "run" }] : [],
      [{ label: `${v.name}:v${v.version}`, href: "", kind: "artifact" }],
      consumers.map((r) => ({ label: `run ${r.run_id}`, href: hashFor(["r", r.entity, r.project, r.run_id]), kind: "run" })),
    ].filter((c) => c.length);
    const W = 190;
    const H = 34;
    const GAP = 60;
    const rows = Math.max(...columns.map((c) => c.length));
    const width = columns.length * (W + GAP);
    const height = rows * (H + 14) + 10;
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Lineage graph");
    const pos = columns.map((col, ci) => col.map((_, ri) => ({ x: ci * (W + GAP) + 5, y: ri * (H + 14) + 5 + ((rows - col.length) * (H + 14)) / 2 })));
    for (let ci = 0; ci + 1 < columns.length; ci++) {
      for (const a of pos[ci]) {
        for (const b of pos[ci + 1]) {
          const line = document.createElementNS(NS, "line");
          line.setAttribute("x1", String(a.x + W));
          line.setAttribute("y1", String(a.y + H / 2));
          line.setAttribute("x2", String(b.x));
          line.setAttribute("y2", String(b.y + H / 2));
          line.setAttribute("stroke", "#8a94a6");
          svg.append(line);
        }
      }
    }
    columns.forEach((col, ci) =>
      col.forEach((node, ri) => {
        const { x, y } = pos[ci][ri];
        const g = document.createElementNS(NS, "g");
        g.setAttribute("data-kind", node.kind);
        const rect = document.createElementNS(NS, "rect");
        rect.setAttribute("x", String(x));
        rect.setAttribute("y", String(y));
        rect.setAttribute("width", String(W));
        rect.setAttribute("height", String(H));
        rect.setAttribute("rx", node.kind === "run" ? "17" : "4");
        rect.setAttribute("fill", node.kind === "run" ? "#eef4ff" : "#f3f0e8");
        rect.setAttribute("stroke", node.href ? "#5b6b86" : "#1f2937");
        const text = document.createElementNS(NS, "text");
        text.setAttribute("x", String(x + W / 2));
        text.setAttribute("y", String(y + H / 2 + 4));
        text.setAttribute("text-anchor", "middle");
        text.setAttribute("font-size", "12");
        text.textContent = node.label;
        g.append(rect, text);
        if (node.href) {
          const a = document.createElementNS(NS, "a");
          a.setAttribute("href", node.href);
          a.append(g);
          svg.append(a);
        } else svg.append(g);
      }),
    );
    return h("div", null, svg);
  }

  get<Version[]>(`${base}/versions`)
    .then((found) => {
      versions = found;
      render();
    })
    .catch((e) => versionsBox.replaceChildren(errorBox(e)));
  return {
    dispose: () => objectUrls.forEach((u) => URL.revokeObjectURL(u)),
  };
}
