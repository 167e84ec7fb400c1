// Draws the headline comparison with the peers as an SVG: edge-cache's figures from a
// bench/cache.mjs run (its JSON) beside the peers' (bench/peers.json), four panels of
// horizontal bars, lower is better in each. Plain SVG written by hand, no dependencies.
//
//   node bench/plot.mjs [bench/results/cache.json] [bench/peers.svg]
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const [resultsPath = path.join(BENCH, "results", "cache.json"), outPath = path.join(BENCH, "peers.svg")] = process.argv.slice(2);
const results = JSON.parse(readFileSync(resultsPath, "utf8"));
const peers = JSON.parse(readFileSync(path.join(BENCH, "peers.json"), "utf8"));

const SYSTEMS = [
  { id: "edge", name: "edge-cache", color: "#d9480f" },
  { id: "naive", name: peers.peers.naive.short, color: "#868e96" },
  { id: "nginx", name: peers.peers.nginx.short, color: "#2f9e44" },
  { id: "varnish", name: peers.peers.varnish.short, color: "#1971c2" },
];

const s = results.sections;
const need = (value, what) => {
  if (value === undefined) throw new Error(`${resultsPath} has no ${what}: run the full bench (node bench/cache.mjs)`);
  return value;
};
const cold500 = need(s.cold?.[500], "cold section").median;
const fast = need(s.fast, "fast section").median;
const steady = need(s.steady, "steady section").swr.median;
const peer = (scenario, id) => peers.scenarios[scenario][id];

// One panel per headline figure: each row a value (or a [p50, p99] pair), null when the figure
// means nothing for that system (why: `missing`).
const PANELS = [
  {
    title: "Origin fetches, 500 concurrent requests for a cold key",
    unit: "origin fetches",
    rows: {
      edge: cold500.fetches,
      naive: peer("cold500", "naive").originFetches,
      nginx: peer("cold500", "nginx").originFetches,
      varnish: peer("cold500", "varnish").originFetches,
    },
  },
  {
    title: "Waiters' latency beyond the 800 ms origin, 500 concurrent",
    unit: "ms beyond the origin (dark: p50, pale: p99)",
    rows: {
      edge: [cold500.wp50, cold500.wp99],
      naive: null,
      nginx: [peer("wait500", "nginx").p50Ms, peer("wait500", "nginx").p99Ms],
      varnish: [peer("wait500", "varnish").p50Ms, peer("wait500", "varnish").p99Ms],
    },
    missing: "no waiters: every request goes to the origin",
  },
  {
    title: "p50 latency, 100 concurrent requests, 100 ms origin",
    unit: "ms (dashed: the origin's 100 ms)",
    marker: 100,
    rows: {
      edge: fast.p50,
      naive: null,
      nginx: peer("origin100", "nginx").p50Ms,
      varnish: peer("origin100", "varnish").p50Ms,
    },
    missing: "not measured",
  },
  {
    title: "Worst latency, steady load across expiries (TTL 1 s)",
    unit: "ms, 16 keep-alive connections (label: origin fetches per expiry)",
    rows: {
      edge: steady.max,
      naive: peer("steady", "naive").maxMs,
      nginx: peer("steady", "nginx").maxMs,
      varnish: peer("steady", "varnish").maxMs,
    },
    notes: {
      edge: steady.perExpiry,
      naive: peer("steady", "naive").fetchesPerExpiry,
      nginx: peer("steady", "nginx").fetchesPerExpiry,
      varnish: peer("steady", "varnish").fetchesPerExpiry,
    },
  },
];

const W = 1120;
const PANEL_W = 530;
const PANEL_H = 250;
const TOP = 118;
const LABEL_W = 120; // system names left of the bars
const BAR_H = 24;
const ROW_GAP = 14;

const esc = (text) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const round = (v) => Math.round(v).toLocaleString("en-US");
const text = (x, y, body, attrs = "") => `<text x="${x}" y="${y}" ${attrs}>${esc(body)}</text>`;

/** Ticks at 1, 2 or 5 × 10^k, about five of them up to at least `max`. */
function ticks(max) {
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const top = Math.ceil(max / step) * step;
  return Array.from({ length: Math.round(top / step) + 1 }, (_, i) => i * step);
}

function panel({ title, unit, rows, missing, marker, notes = {} }, x0, y0) {
  const out = [];
  const values = Object.values(rows).flat().filter((v) => Number.isFinite(v));
  const scaleTicks = ticks(Math.max(...values, marker ?? 0));
  const plotW = PANEL_W - LABEL_W - 110; // room on the right for the value labels
  const xOf = (v) => x0 + LABEL_W + (Math.max(0, v) / scaleTicks.at(-1)) * plotW;
  const rowsTop = y0 + 34;
  const axisY = rowsTop + SYSTEMS.length * (BAR_H + ROW_GAP);
  out.push(text(x0, y0 + 12, title, 'font-size="15" font-weight="bold"'));
  for (const t of scaleTicks) {
    out.push(`<line x1="${xOf(t)}" y1="${rowsTop - 6}" x2="${xOf(t)}" y2="${axisY}" stroke="#e9ecef"/>`);
    out.push(text(xOf(t), axisY + 16, round(t), 'font-size="11" text-anchor="middle" fill="#495057"'));
  }
  out.push(`<line x1="${xOf(0)}" y1="${axisY}" x2="${xOf(scaleTicks.at(-1))}" y2="${axisY}" stroke="#495057"/>`);
  out.push(text(xOf(scaleTicks.at(-1) / 2), axisY + 34, unit, 'font-size="12" text-anchor="middle" fill="#343a40"'));
  // Drawn first, so bars and labels cover it.
  if (marker !== undefined) {
    out.push(`<line x1="${xOf(marker)}" y1="${rowsTop - 6}" x2="${xOf(marker)}" y2="${axisY}" stroke="#212529" stroke-dasharray="4 3"/>`);
  }
  SYSTEMS.forEach((sys, i) => {
    const y = rowsTop + i * (BAR_H + ROW_GAP);
    const mid = y + BAR_H / 2 + 4;
    const value = rows[sys.id];
    out.push(text(x0 + LABEL_W - 8, mid, sys.name, `font-size="13" text-anchor="end"${sys.id === "edge" ? ' font-weight="bold"' : ""}`));
    if (value === null || value === undefined) {
      out.push(text(xOf(0) + 6, mid, missing, 'font-size="12" font-style="italic" fill="#868e96" stroke="#ffffff" stroke-width="4" paint-order="stroke"'));
      return;
    }
    const [main, pale] = Array.isArray(value) ? value : [value, null];
    if (pale !== null) out.push(`<rect x="${xOf(0)}" y="${y}" width="${xOf(pale) - xOf(0)}" height="${BAR_H}" fill="${sys.color}" opacity="0.35"/>`);
    // At least 2 px, so a value of 1 next to 500 still shows a bar.
    out.push(`<rect x="${xOf(0)}" y="${y}" width="${Math.max(2, xOf(main) - xOf(0))}" height="${BAR_H}" fill="${sys.color}"/>`);
    let label = pale !== null ? `${round(main)} / ${round(pale)}` : round(main);
    if (notes[sys.id] !== undefined) label += ` (${notes[sys.id]}/expiry)`;
    out.push(text(xOf(pale ?? main) + 6, mid, label, 'font-size="12" fill="#212529"'));
  });
  return out;
}

const H = TOP + 2 * PANEL_H + 10;
const run = results.meta;
const disturbed = results.anomalies.some((a) => a.startsWith("other processes used"))
  ? " Machine busy during this run: see bench/RESULTS.md."
  : "";
const svg = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
  `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
  text(20, 32, "edge-cache beside its peers: stampedes and expiry (lower is better)", 'font-size="20" font-weight="bold"'),
  text(
    20,
    54,
    `edge-cache: node bench/cache.mjs, ${run.date.slice(0, 10)}, medians of ${run.runs} runs, ${run.cpus} cores, Miniflare ${run.miniflare}, real Redis.${disturbed}`,
    'font-size="12" fill="#495057"',
  ),
  text(
    20,
    70,
    `Peers: bench/peers.json (${peers.measured.machine}, ${peers.measured.date}, ${peers.measured.statistic}; same counting origin, 800 ms unless said).`,
    'font-size="12" fill="#495057"',
  ),
];
SYSTEMS.forEach((sys, i) => {
  const x = 20 + i * 180;
  svg.push(`<rect x="${x}" y="84" width="14" height="14" fill="${sys.color}"/>`);
  svg.push(text(x + 20, 96, sys.name, 'font-size="13"'));
});
PANELS.forEach((p, i) => svg.push(...panel(p, 20 + (i % 2) * (PANEL_W + 20), TOP + Math.floor(i / 2) * PANEL_H)));
svg.push("</svg>");
writeFileSync(outPath, `${svg.join("\n")}\n`);
console.error(`wrote ${path.relative(process.cwd(), outPath)}`);
