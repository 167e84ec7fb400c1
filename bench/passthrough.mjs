// Pass-through throughput and latency, in one run on this machine:
//   1. the origin directly,
//   2. a minimal JavaScript pass-through worker (bench/js-passthrough-worker.mjs) in workerd,
//   3. edge-cache (build/, release) in workerd, same Miniflare version, memory store.
// Load: node http with a keep-alive agent, 16 concurrent connections, fixed duration per run,
// every latency recorded raw (no coordinated-omission correction; bench/lib.mjs, shared with
// bench/cache.mjs); runs are interleaved and the medians of 3 runs are reported. The origin
// (bench/origin-server.mjs) runs in its own process and answers `no-store` here. Loopback only;
// bounded (about a minute).
//
//   npm run build && node bench/passthrough.mjs [--seconds 5] [--runs 3] [--connections 16]
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { Miniflare } from "miniflare";

import { load as loadWith, median, once as onceWith, startBenchOrigin } from "./lib.mjs";
import { EDGE_SCRIPT, EDGE_WASM, ROOT, workerOptions } from "../tests/support/worker-options.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};

await main();

async function main() {
  const seconds = option("seconds", 5);
  const runs = option("runs", 3);
  const connections = option("connections", 16);
  if (!existsSync(EDGE_SCRIPT)) {
    console.error("build/ is missing: run `npm run build` first");
    process.exit(1);
  }

  const origin = await startBenchOrigin();
  const originUrl = origin.url;

  // Both workers' console output is dropped (the memory-store warning is expected): a clean table.
  const bindings = { ORIGIN_URL: originUrl };
  const edge = new Miniflare(workerOptions({ bindings }));
  const js = new Miniflare(workerOptions({ script: path.join(ROOT, "bench", "js-passthrough-worker.mjs"), bindings }));
  const cleanup = async () => {
    await Promise.allSettled([origin.stop(), edge.dispose(), js.dispose()]);
  };

  try {
    const targets = [
      { name: "origin directly", url: `${originUrl}/bench?cc=no-store` },
      { name: "JS pass-through worker (workerd)", url: `${(await js.ready).origin}/bench?cc=no-store` },
      { name: "edge-cache pass-through (workerd)", url: `${(await edge.ready).origin}/bench?cc=no-store` },
    ];
    for (const target of targets) {
      const check = await once(target.url);
      if (check !== 200) throw new Error(`${target.name} answered ${check}`);
      await load(target.url, 1, connections); // warm-up: JIT, connections, isolates
      target.runs = [];
    }
    for (let run = 0; run < runs; run++) {
      for (const target of targets) {
        target.runs.push(await load(target.url, seconds, connections));
      }
    }

    const base = targets[1];
    const baseRps = median(base.runs.map((r) => r.rps));
    console.log(`\nPass-through, ${connections} keep-alive connections, ${seconds} s per run, median of ${runs} runs`);
    console.log(`(load generator, origin and workerd share this machine's ${(await import("node:os")).availableParallelism()} CPUs)\n`);
    console.log("| target | requests/s | p50 ms | p99 ms | errors | vs JS worker |");
    console.log("|---|---|---|---|---|---|");
    for (const target of targets) {
      const rps = median(target.runs.map((r) => r.rps));
      const p50 = median(target.runs.map((r) => r.p50));
      const p99 = median(target.runs.map((r) => r.p99));
      const errors = target.runs.reduce((sum, r) => sum + r.errors, 0);
      console.log(
        `| ${target.name} | ${Math.round(rps)} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${errors} | ${(rps / baseRps).toFixed(2)} |`,
      );
    }
    const raw = readFileSync(EDGE_WASM).length;
    const gzipped = spawnSync("gzip", ["-9", "-c", EDGE_WASM], { maxBuffer: 64 << 20 }).stdout?.length;
    console.log(`\nbuild/index_bg.wasm: ${raw} bytes raw, ${gzipped} bytes gzip -9`);
  } finally {
    await cleanup();
  }
}

/** One request on a fresh connection; resolves with the status. */
async function once(url) {
  return (await onceWith(url)).status;
}

/** `connections` closed loops over keep-alive connections for `seconds` (bench/lib.mjs). */
function load(url, seconds, connections) {
  return loadWith(url, { seconds, connections });
}
