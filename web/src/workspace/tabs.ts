// The project's two views as tabs: the workspace (panels) and the runs table.

import { h, hashFor } from "../util";

export function projectTabs(entity: string, project: string, active: "workspace" | "runs", query: URLSearchParams): HTMLElement {
  const keep = { filter: query.get("filter"), sort: query.get("sort"), group: query.get("group") };
  const tab = (id: "workspace" | "runs", label: string, path: string[]) =>
    h("a.ptab", { href: hashFor(path, keep), "aria-current": id === active ? "page" : null, id: `ptab-${id}` }, label);
  return h(
    "nav.ptabs",
    { "aria-label": `Views of ${entity}/${project}` },
    tab("workspace", "Workspace", ["p", entity, project]),
    tab("runs", "Runs table", ["p", entity, project, "runs"]),
  );
}
