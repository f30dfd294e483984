import { get, type Project, type Sweep } from "../api";
import type { View } from "../main";
import { setCrumbs, setTitle } from "../main";
import { errorBox, fmtTime, h, hashFor, stateBadge } from "../util";

export function projectsView(root: HTMLElement): View {
  setCrumbs([["Projects", null]]);
  setTitle("Projects");
  const list = h("div", null, h("p.muted", null, "Loading…"));
  const sweeps = h("div");
  root.append(h("h1", null, "Projects"), list, h("h2", null, "Sweeps"), sweeps);
  get<Project[]>("/projects")
    .then((projects) => {
      if (!projects.length) {
        list.replaceChildren(h("p.muted", null, "No runs yet. Log one with runyard.init(project=...) and it appears here."));
        return;
      }
      list.replaceChildren(
        h(
          "table.plain",
          { "aria-label": "Projects" },
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "Entity"), h("th", { scope: "col" }, "Project"), h("th.num", { scope: "col" }, "Runs"), h("th", { scope: "col" }, "Artifacts"))),
          h(
            "tbody",
            null,
            projects.map((p) =>
              h("tr", null, h("td", null, p.entity), h("td", null, h("a", { href: hashFor(["p", p.entity, p.project]) }, p.project)), h("td.num", null, p.runs), h("td", null, h("a", { href: hashFor(["a", p.entity, p.project]) }, "artifacts"))),
            ),
          ),
        ),
      );
    })
    .catch((e) => list.replaceChildren(errorBox(e)));
  get<Sweep[]>("/sweeps")
    .then((items) => {
      if (!items.length) {
        sweeps.replaceChildren(h("p.muted", null, "No sweeps."));
        return;
      }
      sweeps.replaceChildren(
        h(
          "table.plain",
          { "aria-label": "Sweeps" },
          h("thead", null, h("tr", null, ["Sweep", "Project", "Method", "State", "Runs", "Created"].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            null,
            items.map((s) =>
              h(
                "tr",
                null,
                h("td", null, h("a", { href: hashFor(["s", s.id]) }, s.name || s.id)),
                h("td", null, `${s.entity}/${s.project}`),
                h("td", null, s.method),
                h("td", null, stateBadge(s.state)),
                h("td.num", null, s.run_count),
                h("td", null, fmtTime(s.created_at)),
              ),
            ),
          ),
        ),
      );
    })
    .catch((e) => sweeps.replaceChildren(errorBox(e)));
  return {};
}
