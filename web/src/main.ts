// The dashboard's router: every view has a hash URL that can be shared.
//
//   #/                                   projects
//   #/p/{entity}/{project}?filter=&search=&group=&sort=&x=  workspace (panels over the runs)
//   #/p/{entity}/{project}/runs?filter=&sort=&cols=&group=  runs table
//   #/r/{entity}/{project}/{run_id}?x=&refresh=  run page
//   #/compare/{entity}/{project}?runs=a,b&x=&smooth=&log=&group=   comparison
//   #/s/{sweep_id}                       sweep page
//   #/a/{entity}/{project}[/{name}]      artifacts (views/artifacts.ts)

import "./style.css";
import { apiKey, setApiKey } from "./api";
import { clear, h, hashParts } from "./util";
import { projectsView } from "./views/projects";
import { runsView } from "./views/runs";
import { runView } from "./views/run";
import { compareView } from "./views/compare";
import { sweepView } from "./views/sweep";
import { artifactView, artifactsView } from "./views/artifacts";
import "./panels";
import { workspaceView } from "./workspace/view";

export interface View {
  /** called when the user leaves the view (stop timers, free charts) */
  dispose?: () => void;
}

export type Crumb = [string, string | null];

const main = document.getElementById("main")!;
const crumbs = document.getElementById("crumbs")!;
let current: View | null = null;
let currentPath = "";

export function setCrumbs(items: Crumb[]): void {
  clear(crumbs);
  const ol = h("ol");
  items.forEach(([label, href], i) => {
    const last = i === items.length - 1;
    ol.append(h("li", null, href && !last ? h("a", { href }, label) : h("span", { "aria-current": last ? "page" : null }, label)));
  });
  crumbs.append(ol);
}

export function setTitle(title: string): void {
  document.title = title ? `${title} · runyard` : "runyard";
}

function route(): void {
  const { path, query } = hashParts();
  const key = path.join("/");
  // A change of the query alone (e.g. a sort saved into the URL) re-renders the same view.
  current?.dispose?.();
  current = null;
  clear(main);
  const root = h("div.view");
  main.append(root);
  if (key !== currentPath) main.focus({ preventScroll: true });
  currentPath = key;
  try {
    if (path.length === 0) current = projectsView(root);
    else if (path[0] === "p" && path.length === 3) current = workspaceView(root, path[1], path[2], query);
    else if (path[0] === "p" && path.length === 4 && path[3] === "runs") current = runsView(root, path[1], path[2], query);
    else if (path[0] === "r" && path.length === 4) current = runView(root, path[1], path[2], path[3], query);
    else if (path[0] === "compare" && path.length === 3) current = compareView(root, path[1], path[2], query);
    else if (path[0] === "s" && path.length === 2) current = sweepView(root, path[1]);
    else if (path[0] === "a" && path.length === 3) current = artifactsView(root, path[1], path[2]);
    else if (path[0] === "a" && path.length === 4) current = artifactView(root, path[1], path[2], path[3], query);
    else {
      setCrumbs([["Projects", "#/"], ["Not found", null]]);
      root.append(h("h1", null, "Not found"), h("p", null, "No view at this address. ", h("a", { href: "#/" }, "Projects")));
    }
  } catch (err) {
    root.append(h("div.error", { role: "alert" }, String(err)));
  }
}

document.getElementById("key-btn")!.addEventListener("click", () => {
  const key = prompt("API key for this server (ry_...); empty to forget it", apiKey() ?? "");
  if (key === null) return;
  setApiKey(key.trim() || null);
  route();
});

window.addEventListener("hashchange", route);
route();
