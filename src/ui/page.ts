// The dashboard's page and style. The import map lets the browser load the npm packages by name,
// as the dashboard's modules import them (and as TypeScript checks them).

export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tandem</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/lib/uplot.css">
<link rel="stylesheet" href="/ui/style.css">
<script type="importmap">
{"imports": {
  "preact": "/ui/lib/preact.js",
  "preact/hooks": "/ui/lib/hooks.js",
  "htm": "/ui/lib/htm.js",
  "htm/preact": "/ui/lib/htm-preact.js",
  "uplot": "/ui/lib/uplot.js"
}}
</script>
<script type="module" src="/ui/app/main.js"></script>
</head>
<body><div id="app"></div></body>
</html>
`;

export const STYLE = `
:root { --fg: #1d2329; --muted: #66707a; --line: #d9dee3; --bg: #f6f7f9; --card: #fff;
  --ok: #2f9e44; --warn: #e67700; --bad: #c92a2a; --weights: #4263eb; --kv: #12b886; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1rem; align-items: baseline; padding: .6rem 1rem; background: #1d2329; color: #fff; }
header h1 { font-size: 1.1rem; margin: 0; }
header .muted { color: #aab; }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(18rem, 1fr); gap: 1rem; padding: 1rem; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; margin-bottom: 1rem; }
h2 { font-size: 1rem; margin: 0 0 .4rem; }
h3 { font-size: .9rem; margin: .6rem 0 .3rem; }
.muted { color: var(--muted); }
.row { display: flex; gap: .8rem; flex-wrap: wrap; align-items: center; }
.charts { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: .5rem; }
.chart h4 { margin: 0; font-size: .75rem; font-weight: 600; color: var(--muted); }
.phase { padding: 0 .4rem; border-radius: 3px; font-size: .8rem; color: #fff; background: var(--warn); }
.phase.Ready { background: var(--ok); }
.phase.Failed, .phase.BackingOff { background: var(--bad); }
.nodes { display: flex; gap: .5rem; align-items: stretch; }
.node { flex: 1; border: 1px solid var(--line); border-radius: 4px; padding: .4rem .5rem; font-size: .8rem; min-width: 9rem; }
.node .role { font-weight: 600; }
.bar { height: .5rem; border-radius: 2px; margin: .15rem 0; }
.bar.weights { background: var(--weights); }
.bar.kv { background: var(--kv); }
.state-Ready { color: var(--ok); }
.state-Exited { color: var(--bad); }
ol.events { list-style: none; padding: 0; margin: 0; max-height: 22rem; overflow: auto; font-size: .8rem; }
ol.events li { border-bottom: 1px solid var(--line); padding: .2rem 0; }
ol.events .warning { color: var(--bad); }
pre.log { background: #111; color: #ddd; font-size: .75rem; max-height: 20rem; overflow: auto; padding: .5rem; margin: 0; white-space: pre-wrap; }
textarea { width: 100%; min-height: 10rem; font: .8rem monospace; }
ul.problems { color: var(--bad); margin: .3rem 0; padding-left: 1.2rem; }
button { cursor: pointer; }
input[type=number] { width: 4rem; }
`;
