// The one place that lists the workspace's panel kinds. A new kind is a module exporting a
// PanelKind (panels/types.ts) plus one line here; the order is the order in which kinds claim
// a project's metrics for automatic panels (a media kind goes before "line").

import { registerPanel } from "./registry";
import { audioPanel, htmlPanel, imagesPanel, plotlyPanel, videoPanel } from "./media";
import { histogramPanel } from "./histogram";
import { tablePanel } from "./table";
import { customChartPanel } from "./customchart";
import { linePanel } from "./line";
import { barPanel } from "./bar";
import { scatterPanel } from "./scatter";
import { parcoordsPanel } from "./parcoords";

// media kinds first: they claim the keys whose summary is a media reference
registerPanel(imagesPanel);
registerPanel(audioPanel);
registerPanel(videoPanel);
registerPanel(htmlPanel);
registerPanel(plotlyPanel);
registerPanel(histogramPanel);
registerPanel(customChartPanel); // before "table": a table with a chart spec is a chart
registerPanel(tablePanel);
registerPanel(linePanel);
registerPanel(barPanel);
registerPanel(scatterPanel);
registerPanel(parcoordsPanel);

export { panelKind, panelKinds } from "./registry";
