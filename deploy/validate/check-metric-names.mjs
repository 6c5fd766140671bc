// Every metric the Grafana dashboard and the Prometheus rules query must be
// one the processes really export. Arguments: DASHBOARD.json RULES.yaml SCRAPE...
// where each SCRAPE is a /metrics text captured from a running process.
// Fails (exit 1) listing each queried name missing from all scrapes, so a
// renamed metric breaks the build instead of silently emptying a panel.
import fs from "node:fs";
import * as yaml from "js-yaml";

const [dashboardFile, rulesFile, ...scrapes] = process.argv.slice(2);
const NAME = /\brocmforge_[a-zA-Z0-9_]+/g;

const queried = new Map();  // name -> where
function collect(expr, where) {
  for (const m of expr.matchAll(NAME)) if (!queried.has(m[0])) queried.set(m[0], where);
}

const dashboard = JSON.parse(fs.readFileSync(dashboardFile, "utf8"));
function walkPanels(panels) {
  for (const p of panels || []) {
    for (const t of p.targets || []) if (t.expr) collect(t.expr, `dashboard panel "${p.title}"`);
    walkPanels(p.panels);
  }
}
walkPanels(dashboard.panels);

const rules = yaml.load(fs.readFileSync(rulesFile, "utf8"));
const recorded = new Set();
for (const g of rules.groups) for (const r of g.rules) if (r.record) recorded.add(r.record);
for (const g of rules.groups) {
  for (const r of g.rules) collect(r.expr, `rule ${r.record || r.alert}`);
}

const exported = new Set();
for (const f of scrapes) {
  for (const line of fs.readFileSync(f, "utf8").split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)/);
    if (m) exported.add(m[1]);
  }
}
if (exported.size === 0) {
  console.error("check-metric-names: the scrapes contain no metrics");
  process.exit(1);
}

const missing = [...queried].filter(([name]) => !exported.has(name) && !recorded.has(name));
for (const [name, where] of missing) console.error(`MISSING ${name} (queried by ${where}) is not exported`);
if (missing.length) process.exit(1);
console.log(`check-metric-names: all ${queried.size} queried metric names are exported (${exported.size} series names scraped)`);
