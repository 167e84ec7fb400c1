// Sessions on a store of their own (issue 14 item 4, docs §5.10): what a cache hit with a
// session cookie costs with one store and with two. Each store's REST endpoint sits behind the
// counting proxy (tests/support/redis-proxy.mjs) holding every answer BENCH_STORE_DELAY_MS
// (default 20 ms), a stand-in for the network distance to Upstash. With one store the session
// read rides in the lookup's request; with two it is a request of its own, sent together with
// the lookup: the hit should cost one delay, not two. Sequential hits, medians, and the ratio
// against the one-store hit of the same run.
//
//   npm run build && cargo build --release -p redis-rest-gateway && node bench/session-stores.mjs
import { performance } from "node:perf_hooks";

import { startStack } from "../tests/support/harness.mjs";
import { startRedisProxy } from "../tests/support/redis-proxy.mjs";
import { startGateway, startRedis } from "../tests/support/services.mjs";

const HITS = Number(process.env.BENCH_HITS ?? 200);
const DELAY_MS = Number(process.env.BENCH_STORE_DELAY_MS ?? 20);
const NAME = "__Host-session";

const cleanups = [];
const stopAll = async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
};
process.on("SIGINT", async () => {
  await stopAll();
  process.exit(130);
});

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

try {
  const stack = await startStack();
  cleanups.push(() => stack.stop());
  const endpoints = [];
  for (const name of ["cache", "sessions"]) {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const gateway = await startGateway({ redisUrl: redis.url });
    cleanups.push(() => gateway.stop());
    const proxy = await startRedisProxy(gateway.url);
    cleanups.push(() => proxy.stop());
    endpoints.push({ name, gateway, proxy });
  }
  const [cache, sessions] = endpoints;
  stack.origin.route("/login", ({ res }) => {
    res.writeHead(200, { "edge-session-set": JSON.stringify({ user: "bench" }) });
    res.end("in");
  });
  stack.origin.route("/shared", ({ res }) => {
    res.writeHead(200, { "cache-control": "public, max-age=3600" });
    res.end("shared page");
  });

  const runs = [
    { label: "one store, hit without a session cookie", vars: {}, cookie: false },
    { label: "one store, hit with a session cookie", vars: {}, cookie: true },
    {
      label: "two stores, hit with a session cookie",
      vars: { SESSION_REDIS_REST_URL: sessions.proxy.url, SESSION_REDIS_REST_TOKEN: sessions.gateway.token },
      cookie: true,
    },
  ];
  const results = [];
  for (const run of runs) {
    cache.proxy.fault(null);
    sessions.proxy.fault(null);
    await stack.restartWorker({
      UPSTASH_REDIS_REST_URL: cache.proxy.url,
      UPSTASH_REDIS_REST_TOKEN: cache.gateway.token,
      REDIS_TIMEOUT_MS: "5000",
      SESSION_SECRET: "bench-session-secret-0123456789-abcdef",
      ...run.vars,
    });
    const login = await stack.request("/login");
    const cookie = (login.headers["set-cookie"] ?? []).find((c) => c.startsWith(`${NAME}=`)).split(";")[0];
    const headers = run.cookie ? { cookie } : {};
    for (let i = 0; i < 5; i++) await stack.request("/shared", { headers }); // fill and warm up
    cache.proxy.fault({ delayMs: DELAY_MS });
    sessions.proxy.fault({ delayMs: DELAY_MS });
    cache.proxy.reset();
    sessions.proxy.reset();
    const times = [];
    let hits = 0;
    for (let i = 0; i < HITS; i++) {
      const started = performance.now();
      const res = await stack.request("/shared", { headers });
      times.push(performance.now() - started);
      if (res.headers["x-cache"] === "HIT") hits++;
    }
    const lookups = cache.proxy.requests().filter((r) => r.body.includes('"MGET"')).length;
    results.push({ ...run, median: median(times), hits, perHit: [lookups / HITS, sessions.proxy.total() / HITS] });
  }
  const base = results[1].median;
  console.log(`\n${HITS} sequential hits per row, every Redis answer held ${DELAY_MS} ms by the proxy\n`);
  console.log("| hit | median ms | vs one store with a session | HITs | requests per hit (cache store, session store) |");
  console.log("|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.label} | ${r.median.toFixed(1)} | ${(r.median / base).toFixed(2)} | ${r.hits}/${HITS} | ${r.perHit.map((n) => n.toFixed(2)).join(", ")} |`,
    );
  }
} finally {
  await stopAll();
}
