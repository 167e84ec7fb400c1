// What a hot-key hit costs with the per-isolate L1 (issue 12): `node bench/l1-hit.mjs
// [seconds] [runs]` (default 5 s, 3 runs). Four workers, each in its own Miniflare (its own
// workerd process), hit one cached key in closed loops (8 keep-alive connections), runs
// interleaved:
//   l1        edge-cache, Redis via the gateway, the L1 on (the default): an L1 hit
//   redis     the same with CACHE_L1_BYTES=0: every hit reads Redis (before issue 12)
//   memory    edge-cache on the embedded memory store with CACHE_L1_BYTES=0 (before issue 12)
//   naive     the peers' naive JS worker on @upstash/redis, same gateway
// Printed per worker (medians over the runs): requests/s, p50 latency, the workerd process's
// CPU time per request (utime + stime from /proc, all its threads), and Redis HTTP requests per
// request (every Redis-backed worker goes through the counting proxy). Ratios against the naive
// worker in the same run; figures: bench/RESULTS.md.
import { Miniflare } from "miniflare";

import { fmt, load, median, once, readProcesses, startBenchServices } from "./lib.mjs";
import { bundleNaiveWorker } from "./cache/stack.mjs";
import { startRedisProxy } from "../tests/support/redis-proxy.mjs";
import { workerOptions } from "../tests/support/worker-options.mjs";

const seconds = Number(process.argv[2] ?? 5);
const runs = Number(process.argv[3] ?? 3);
const CONNECTIONS = 8;

/** The pids of the workerd processes this process started (others may run their own). */
function workerdPids() {
  return new Set([...readProcesses()].filter(([, p]) => p.comm === "workerd" && p.ppid === process.pid).map(([pid]) => pid));
}

/** CPU seconds (user + system, all threads) a process has used. */
function cpuSeconds(pid) {
  const proc = readProcesses().get(pid);
  if (!proc) throw new Error(`process ${pid} is gone`);
  return proc.cpu;
}

const cleanups = [];
try {
  const { origin, gateway, stop } = await startBenchServices();
  cleanups.push(stop);
  const proxy = await startRedisProxy(gateway.url);
  cleanups.push(() => proxy.stop());
  const redisVars = { UPSTASH_REDIS_REST_URL: proxy.url, UPSTASH_REDIS_REST_TOKEN: gateway.token };
  const base = { ORIGIN_URL: origin.url };
  const specs = [
    { id: "l1", bindings: { ...base, ...redisVars } },
    { id: "redis", bindings: { ...base, ...redisVars, CACHE_L1_BYTES: "0" } },
    { id: "memory", bindings: { ...base, CACHE_L1_BYTES: "0" } },
    { id: "naive", script: bundleNaiveWorker(cleanups), bindings: { ...base, ...redisVars } },
  ];
  const targets = [];
  for (const spec of specs) {
    const before = workerdPids();
    const mf = new Miniflare(workerOptions({ script: spec.script, bindings: spec.bindings, name: spec.id }));
    cleanups.push(() => mf.dispose());
    const url = `${(await mf.ready).origin}/hot/${spec.id}`;
    const pid = [...workerdPids()].find((p) => !before.has(p));
    if (!pid) throw new Error(`no workerd process found for ${spec.id}`);
    for (let i = 0; i < 2; i += 1) await once(url); // fill, then hit
    const check = await once(url);
    if (check.xcache !== "HIT") throw new Error(`${spec.id}: expected a HIT, got ${check.xcache}`);
    await load(url, { seconds: 1, connections: CONNECTIONS }); // warm-up
    targets.push({ ...spec, url, pid, runs: [] });
  }
  for (let run = 0; run < runs; run += 1) {
    for (const t of targets) {
      proxy.reset();
      const cpu0 = cpuSeconds(t.pid);
      const r = await load(t.url, { seconds, connections: CONNECTIONS });
      const cpu = cpuSeconds(t.pid) - cpu0;
      const redisRequests = proxy.requests().filter((q) => /"m?get"/i.test(q.body)).length;
      t.runs.push({ rps: r.rps, p50: r.p50, cpuMs: (1000 * cpu) / r.count, redisPerRequest: redisRequests / r.count, errors: r.errors });
    }
  }
  const m = (t, k) => median(t.runs.map((r) => r[k]));
  const naive = targets.find((t) => t.id === "naive");
  console.log(`# L1 hit cost, ${new Date().toISOString()}, ${seconds} s × ${runs} runs per worker, ${CONNECTIONS} connections, medians`);
  console.log("| worker | requests/s | p50 ms | workerd CPU ms per request | ÷ naive CPU | Redis requests per request |");
  console.log("|---|---|---|---|---|---|");
  for (const t of targets) {
    console.log(
      `| ${t.id} | ${fmt(m(t, "rps"))} | ${fmt(m(t, "p50"), 2)} | ${fmt(m(t, "cpuMs"), 3)} | ${fmt(m(t, "cpuMs") / m(naive, "cpuMs"), 2)} | ${fmt(m(t, "redisPerRequest"), 3)} |`,
    );
  }
} finally {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch {
      // keep stopping the rest
    }
  }
}
