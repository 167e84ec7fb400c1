// edge-cache's cache benchmark: the peers' rows for edge-cache (bench/peers.md), hit-path
// throughput, Redis requests per request kind, cold-key stampedes at three sizes and the wasm
// size. Prints a Markdown report (bench/RESULTS.md keeps it) and, for a full run, writes every
// figure to bench/results/cache.json (bench/plot.mjs draws bench/peers.svg from it).
//
//   npm run build && node bench/cache.mjs                 all sections (about 4–5 minutes)
//   node bench/cache.mjs cold stale --runs 1              only these sections
//   options: --seconds 5 (per load run)  --runs 3  --json PATH (default for a full run:
//   bench/results/cache.json; a partial run writes JSON only when given --json)
//   sections: cold naive fast slow stale steady throughput redis size (bench/cache/sections.mjs)
//
// Everything runs on this machine, loopback only, and is started and stopped here
// (bench/cache/stack.mjs). Latencies are raw, measured from each request's start to the end of
// its body (bench/lib.mjs); no coordinated-omission correction. Each scenario uses fresh paths.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { fmt, watchForeignCpu } from "./lib.mjs";
import { EDGE_SCRIPT, EDGE_WASM, ROOT } from "../tests/support/worker-options.mjs";
import { renderReport } from "./cache/report.mjs";
import { SECTIONS } from "./cache/sections.mjs";
import { startCacheBenchStack } from "./cache/stack.mjs";

const DEFAULT_JSON = path.join(ROOT, "bench", "results", "cache.json");
const PEERS = JSON.parse(readFileSync(path.join(ROOT, "bench", "peers.json"), "utf8"));
const progress = (text) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

/** { seconds, runs, json, sections } from `--name value` options and section names. */
function parseArgs(args) {
  const options = { seconds: 5, runs: 3, json: null, sections: [] };
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : null;
    if (name === "json") options.json = path.resolve(args[++i]);
    else if (name === "seconds" || name === "runs") options[name] = Number(args[++i]);
    else if (name !== null) throw new Error(`unknown option ${args[i]}`);
    else if (args[i] in SECTIONS) options.sections.push(args[i]);
    else throw new Error(`unknown section ${args[i]}; sections: ${Object.keys(SECTIONS).join(" ")}`);
  }
  const full = options.sections.length === 0;
  // Measured in the order of SECTIONS whatever the order asked.
  options.sections = Object.keys(SECTIONS).filter((name) => full || options.sections.includes(name));
  if (full && !options.json) options.json = DEFAULT_JSON;
  return options;
}

/** The running processes (bench/cache/stack.mjs), stopped at the end and on SIGINT/SIGTERM. */
let stack = null;

async function main(options) {
  const t0 = performance.now();
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
  let seq = 0;
  const anomalies = [];
  const bench = {
    ...options,
    connections: 16,
    runId,
    /** A path no earlier run or scenario has used: a fresh cache key. */
    fresh: (kind) => `/${kind}/${runId}-${++seq}`,
    note(text) {
      anomalies.push(text);
      process.stderr.write(`ANOMALY: ${text}\n`);
    },
  };
  if (!existsSync(EDGE_SCRIPT) || !existsSync(EDGE_WASM)) throw new Error("build/ is missing: run `npm run build` first");

  const watch = watchForeignCpu();
  watch.section("setup");
  const workerNames = [...new Set(options.sections.flatMap((name) => SECTIONS[name].workers))];
  progress(`starting the origin${workerNames.length ? `, redis-server, gateway and workers ${workerNames.join(", ")}` : ""}`);
  stack = await startCacheBenchStack(workerNames);
  Object.assign(bench, { origin: stack.origin, workers: stack.workers, proxy: stack.proxy });

  const measured = {};
  for (const name of options.sections) {
    const { title, run } = SECTIONS[name];
    watch.section(`${name}: ${title}`);
    progress(`${title} (runs: ${options.runs})`);
    measured[name] = await run(bench);
  }

  const cpus = os.availableParallelism();
  const interference = watch.report();
  watch.stop();
  for (const sec of interference) {
    const share = sec.cpuSeconds / (sec.seconds * cpus);
    // Sections under a second (the size) are too short for a share to mean anything.
    if (share > 0.05 && sec.name !== "setup" && sec.seconds >= 1) {
      bench.note(`other processes used ${fmt(sec.cpuSeconds, 1)} CPU-s (${fmt(share * 100)}% of the machine) during "${sec.name}" (${sec.top.join(", ")}): those figures are disturbed`);
    }
  }
  const miniflare = JSON.parse(readFileSync(path.join(ROOT, "node_modules", "miniflare", "package.json"), "utf8")).version;
  const results = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      cpus,
      miniflare,
      runs: options.runs,
      seconds: options.seconds,
      connections: bench.connections,
      sections: options.sections,
    },
    sections: measured,
    interference,
    anomalies,
    totalSeconds: (performance.now() - t0) / 1000,
  };
  console.log(renderReport(results, PEERS).join("\n"));
  if (options.json) {
    mkdirSync(path.dirname(options.json), { recursive: true });
    writeFileSync(options.json, `${JSON.stringify(results, null, 1)}\n`);
    progress(`figures written to ${path.relative(process.cwd(), options.json)}`);
  }
}

const onSignal = (signal) => {
  progress(`${signal}: stopping everything`);
  Promise.resolve(stack?.stop()).finally(() => process.exit(130));
};
process.once("SIGINT", onSignal);
process.once("SIGTERM", onSignal);
let exitCode = 0;
try {
  await main(parseArgs(process.argv.slice(2)));
} catch (error) {
  console.error(error?.stack ?? error);
  exitCode = 1;
} finally {
  await stack?.stop();
}
process.exit(exitCode);
