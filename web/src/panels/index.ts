// The one place that lists the workspace's panel kinds. A new kind is a module exporting a
// PanelKind (panels/types.ts) plus one line here; the order is the order in which kinds claim
// a project's metrics for automatic panels (a media kind goes before "line").

import { registerPanel } from "./registry";
import { linePanel } from "./line";
import { barPanel } from "./bar";
import { scatterPanel } from "./scatter";
import { parcoordsPanel } from "./parcoords";

registerPanel(linePanel);
registerPanel(barPanel);
registerPanel(scatterPanel);
registerPanel(parcoordsPanel);

export { panelKind, panelKinds } from "./registry";
