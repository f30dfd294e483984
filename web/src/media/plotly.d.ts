// plotly.js-dist-min ships no types; the dashboard uses newPlot, purge and Plots.resize.
declare module "plotly.js-dist-min";
