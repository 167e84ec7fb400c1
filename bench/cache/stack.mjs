// What bench/cache.mjs measures against, started on loopback and stopped by `stop()`: the
// counting origin (its own process), a real redis-server behind the redis-rest-gateway, the
// counting Redis proxy, and the workers the chosen sections name, each in its own Miniflare:
//
//   edge         edge-cache, Redis via the gateway
//   edgeSession  the same with SESSION_SECRET (sessions on)
//   edgeMemory   edge-cache with the in-memory store (no Redis)
//   edgeCounted  edge-cache with sessions, Redis via the counting proxy
//   js           the JS pass-through baseline (bench/js-passthrough-worker.mjs)
//   naive        the peers' naive cache (bench/js-upstash-worker.mjs, bundled with esbuild)
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Miniflare } from "miniflare";

import { once, startBenchOrigin } from "../lib.mjs";
import { startGateway, startRedis } from "../../tests/support/services.mjs";
import { startRedisProxy } from "../../tests/support/redis-proxy.mjs";
import { ROOT, workerOptions } from "../../tests/support/worker-options.mjs";

/** Paths under /pass/ bypass the cache (the pass-through rows). */
const RULES = JSON.stringify([{ path: "/pass/*", cache: false }]);
/** Workers whose /__edge/health must answer 200 before anything is measured. */
const HEALTH_CHECKED = ["edge", "edgeSession", "edgeCounted"];

/** Starts the services and the workers named in `names`; resolves with { origin, workers, proxy, stop }. */
export async function startCacheBenchStack(names) {
  const cleanups = [];
  const stop = async () => {
    while (cleanups.length) {
      try {
        await cleanups.pop()();
      } catch {
        // keep stopping the rest
      }
    }
  };
  try {
    const origin = await startBenchOrigin();
    cleanups.push(() => origin.stop());
    const stack = { origin, workers: {}, proxy: null, stop };
    if (names.length === 0) return stack;

    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const gateway = await startGateway({ redisUrl: redis.url });
    cleanups.push(() => gateway.stop());
    if (names.includes("edgeCounted")) {
      stack.proxy = await startRedisProxy(gateway.url);
      cleanups.push(() => stack.proxy.stop());
    }
    const secret = randomBytes(32).toString("hex");
    const base = { ORIGIN_URL: origin.url, CACHE_RULES: RULES };
    const redisVars = { UPSTASH_REDIS_REST_URL: gateway.url, UPSTASH_REDIS_REST_TOKEN: gateway.token };
    const specs = {
      edge: () => ({ bindings: { ...base, ...redisVars } }),
      edgeSession: () => ({ bindings: { ...base, ...redisVars, SESSION_SECRET: secret } }),
      edgeMemory: () => ({ bindings: base }),
      edgeCounted: () => ({
        bindings: { ...base, UPSTASH_REDIS_REST_URL: stack.proxy.url, UPSTASH_REDIS_REST_TOKEN: gateway.token, SESSION_SECRET: secret },
      }),
      js: () => ({ script: path.join(ROOT, "bench", "js-passthrough-worker.mjs"), bindings: { ORIGIN_URL: origin.url } }),
      naive: () => ({ script: bundleNaiveWorker(cleanups), bindings: { ORIGIN_URL: origin.url, ...redisVars } }),
    };
    const started = await Promise.all(names.map((name) => startWorker(name, specs[name](), cleanups)));
    for (const w of started) {
      stack.workers[w.name] = w;
      if (!HEALTH_CHECKED.includes(w.name)) continue;
      const health = await once(`${w.url}/__edge/health`);
      if (health.status !== 200) throw new Error(`${w.name}: /__edge/health answered ${health.status}`);
    }
    return stack;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** One worker in Miniflare; resolves with { name, url, logs } (the last 300 runtime lines). */
async function startWorker(name, { script, bindings }, cleanups) {
  const logs = [];
  const onLogLine = (line) => {
    logs.push(line);
    if (logs.length > 300) logs.splice(0, logs.length - 300);
  };
  const mf = new Miniflare(workerOptions({ script, bindings, onLogLine, name }));
  cleanups.push(() => mf.dispose());
  return { name, url: (await mf.ready).origin, logs };
}

/** The naive worker bundled into a temporary directory (@upstash/redis imports bare modules). */
export function bundleNaiveWorker(cleanups) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "edge-cache-bench-"));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const outfile = path.join(tmp, "js-upstash-worker.mjs");
  const bundled = spawnSync(
    path.join(ROOT, "node_modules", ".bin", "esbuild"),
    [
      path.join(ROOT, "bench", "js-upstash-worker.mjs"),
      "--bundle",
      "--format=esm",
      "--platform=neutral",
      "--conditions=workerd,worker,browser",
      "--main-fields=module,main",
      `--outfile=${outfile}`,
      "--log-level=error",
    ],
    { encoding: "utf8" },
  );
  if (bundled.status !== 0) throw new Error(`esbuild failed: ${bundled.stderr}`);
  return outfile;
}
