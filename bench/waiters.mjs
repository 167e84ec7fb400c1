// Waiters on a cold key (issue 11.5): n concurrent requests for a key nobody has cached, the
// origin taking 800 ms, sent through Miniflare's dispatchFetch; then the same n for the now
// cached key (all HIT: this machine's floor for n concurrent requests through workerd and
// Redis). The figure is p99(cold burst) − 800 ms − p99(HIT burst); median of the runs.
// Also printed: how many origin fetches each cold burst made (must be 1) and workerd's CPU
// during the cold burst (waiters that tick on timers show up there). REDIS_TIMEOUT_MS is 5 s
// here, so that a loaded machine does not turn the 500-request burst into a fail-open bypass.
//
//   npm run build && cargo build --release -p redis-rest-gateway
//   node bench/waiters.mjs [--sizes 10,100,500] [--runs 3] [--origin-ms 800] [--build DIR]
//   (--build: another build directory laid out as build/, e.g. a copy of an older build)
import path from "node:path";
import { Miniflare } from "miniflare";

import { fmt, median, percentile, startBenchServices, workerdCpuSeconds } from "./lib.mjs";
import { workerOptions } from "../tests/support/worker-options.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const SIZES = option("sizes", "10,100,500").split(",").map(Number);
const RUNS = Number(option("runs", 3));
const ORIGIN_MS = Number(option("origin-ms", 800));
const BUILD = option("build", null);


/** n requests for `url` at once through dispatchFetch; the latencies (ms, sorted) and X-Cache counts. */
async function burst(mf, url, n) {
  const xcache = {};
  const latencies = await Promise.all(
    Array.from({ length: n }, async () => {
      const t0 = performance.now();
      const res = await mf.dispatchFetch(url);
      await res.arrayBuffer();
      const label = res.status === 200 ? (res.headers.get("x-cache") ?? "-") : `status ${res.status}`;
      xcache[label] = (xcache[label] ?? 0) + 1;
      return performance.now() - t0;
    }),
  );
  return { sorted: latencies.sort((a, b) => a - b), xcache };
}

const cleanups = [];
try {
  const { origin, gateway, stop } = await startBenchServices();
  cleanups.push(stop);
  const mf = new Miniflare(
    // REDIS_TIMEOUT_MS 5 s: 500 requests at once on 2 shared cores can keep a lookup waiting
    // past the default 1 s, and a burst that fails open measures nothing about waiters.
    workerOptions({
      ...(BUILD ? { script: path.resolve(BUILD, "worker", "shim.mjs"), modulesRoot: path.resolve(BUILD) } : {}),
      bindings: { ORIGIN_URL: origin.url, UPSTASH_REDIS_REST_URL: gateway.url, UPSTASH_REDIS_REST_TOKEN: gateway.token, REDIS_TIMEOUT_MS: "5000" },
    }),
  );
  cleanups.push(() => mf.dispose());
  const base = (await mf.ready).origin;
  const runId = Date.now().toString(36);
  await (await mf.dispatchFetch(`${base}/warm/${runId}`)).arrayBuffer();

  const rows = [];
  for (const n of SIZES) {
    const runs = [];
    for (let run = 0; run < RUNS; run++) {
      const path = `/cold/${runId}-${n}-${run}`;
      const url = `${base}${path}?ms=${ORIGIN_MS}`;
      const cpu0 = workerdCpuSeconds();
      const cold = await burst(mf, url, n);
      const cpu = workerdCpuSeconds() - cpu0;
      const hit = await burst(mf, url, n);
      const fetches = (await origin.stats(path)).count;
      const figure = percentile(cold.sorted, 0.99) - ORIGIN_MS - percentile(hit.sorted, 0.99);
      runs.push({ figure, cold: percentile(cold.sorted, 0.99), hit: percentile(hit.sorted, 0.99), fetches, cpu, coldX: cold.xcache, hitX: hit.xcache });
      process.stderr.write(`[waiters] n=${n} run ${run + 1}: ${fmt(figure)} ms, ${fetches} fetch(es), ${JSON.stringify(cold.xcache)} / ${JSON.stringify(hit.xcache)}\n`);
    }
    rows.push({ n, runs });
  }
  console.log(`\n## bench/waiters.mjs, ${new Date().toISOString().slice(0, 10)}\n`);
  console.log(`n concurrent requests (dispatchFetch) for a cold key, ${ORIGIN_MS} ms origin, then the same n on the cached key; median of ${RUNS} runs${BUILD ? `; worker from ${BUILD}` : ""}\n`);
  console.log(`| n | p99 cold − ${ORIGIN_MS} ms − p99 HIT (each run) | median | cold p99 | HIT p99 | origin fetches | workerd CPU during the cold burst |`);
  console.log("|---|---|---|---|---|---|---|");
  for (const { n, runs } of rows) {
    console.log(
      `| ${n} | ${runs.map((r) => fmt(r.figure)).join(", ")} ms | **${fmt(median(runs.map((r) => r.figure)))} ms** | ` +
        `${fmt(median(runs.map((r) => r.cold)))} ms | ${fmt(median(runs.map((r) => r.hit)))} ms | ${runs.map((r) => r.fetches).join(", ")} | ` +
        `${fmt(median(runs.map((r) => r.cpu * 1000)))} ms |`,
    );
  }
} finally {
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch {
      // keep stopping the rest
    }
  }
}
process.exit(0);
