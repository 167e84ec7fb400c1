// The sections of bench/cache.mjs, one per measured scenario, in the order a full run measures
// them. Each names the workers it needs (bench/cache/stack.mjs) and measures with `run(bench)`,
// answering plain figures (written to the JSON results as they are, printed by report.mjs).
// Scenarios repeated `bench.runs` times answer { runs: [...], median: {...} } (see summary()).
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";

import { load, median, once, sleep } from "../lib.mjs";
import { EDGE_WASM } from "../../tests/support/worker-options.mjs";
import { coldBurst, staleBurst, steadyLoad, SWR } from "./bursts.mjs";

const SESSION_COOKIE = "__Host-session";
const COLD_SIZES = [10, 100, 500];

/** The runs of one scenario and the median of each numeric figure across them. */
export function summary(runs) {
  const keys = Object.keys(runs[0] ?? {}).filter((k) => runs.some((r) => typeof r[k] === "number"));
  return { runs, median: Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]))])) };
}

async function repeat(bench, measure) {
  const runs = [];
  for (let run = 0; run < bench.runs; run++) runs.push(await measure());
  return summary(runs);
}

export const SECTIONS = {
  cold: {
    title: `cold-key stampedes (${COLD_SIZES.join(", ")} concurrent, 800 ms origin)`,
    workers: ["edge"],
    async run(bench) {
      const runs = Object.fromEntries(COLD_SIZES.map((n) => [n, []]));
      // Sizes interleaved within each run, so a disturbance spreads over all of them.
      for (let run = 0; run < bench.runs; run++) {
        for (const n of COLD_SIZES) runs[n].push(await coldBurst(bench, bench.workers.edge, n, 800, { warm: true }));
      }
      return Object.fromEntries(COLD_SIZES.map((n) => [n, summary(runs[n])]));
    },
  },

  naive: {
    title: "the naive @upstash/redis worker: 500 concurrent for a cold key, once",
    workers: ["naive"],
    run: (bench) => coldBurst(bench, bench.workers.naive, 500, 800, { reference: true }),
  },

  fast: {
    title: "100 concurrent, 100 ms origin",
    workers: ["edge"],
    run: (bench) => repeat(bench, () => coldBurst(bench, bench.workers.edge, 100, 100)),
  },

  slow: {
    title: "100 waiters behind a 6 s origin",
    workers: ["edge"],
    run: (bench) => repeat(bench, () => coldBurst(bench, bench.workers.edge, 100, 6000)),
  },

  stale: {
    title: "50 concurrent just after expiry",
    workers: ["edge"],
    run: (bench) => repeat(bench, () => staleBurst(bench, bench.workers.edge)),
  },

  steady: {
    title: "steady load across expiry, with and without stale-while-revalidate",
    workers: ["edge"],
    async run(bench) {
      const swr = [];
      const noSwr = [];
      for (let run = 0; run < bench.runs; run++) {
        swr.push(await steadyLoad(bench, bench.workers.edge, SWR));
        noSwr.push(await steadyLoad(bench, bench.workers.edge, "s-maxage=1"));
      }
      return { swr: summary(swr), noSwr: summary(noSwr) };
    },
  },

  throughput: {
    title: "hit-path throughput, 7 targets",
    workers: ["js", "edge", "edgeSession", "edgeMemory", "naive"],
    run: hitThroughput,
  },

  redis: {
    title: "Redis HTTP requests per request kind (through the counting proxy)",
    workers: ["edgeCounted"],
    run: redisCounts,
  },

  size: {
    title: "wasm size",
    workers: [],
    run: () => ({
      rawBytes: statSync(EDGE_WASM).size,
      gzipBytes: spawnSync("gzip", ["-9", "-c", EDGE_WASM], { maxBuffer: 64 << 20 }).stdout?.length,
      builtAt: statSync(EDGE_WASM).mtime.toISOString(),
    }),
  },
};

/** A live session cookie (name=value) from `w`, whose origin creates a session on request. */
async function sessionCookie(w, runId) {
  const login = await once(`${w.url}/login-${runId}?cc=no-store&session=${encodeURIComponent('{"user":"bench"}')}`);
  const line = (login.setCookie ?? []).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  if (!line) throw new Error(`${w.name}: no session cookie from the login request: ${JSON.stringify(login.setCookie)}`);
  return line.split(";")[0];
}

/** Closed-loop keep-alive load on cached keys (and the baselines), runs interleaved. */
async function hitThroughput(bench) {
  const { edge, edgeSession, edgeMemory, js, naive } = bench.workers;
  const cookie = await sessionCookie(edgeSession, bench.runId);
  const targets = [
    { id: "origin", name: "(a) origin directly", url: `${bench.origin.url}/tp/origin`, expect: undefined },
    { id: "js", name: "(b) JS pass-through worker (workerd)", url: `${js.url}/tp/js`, expect: undefined },
    { id: "edgePass", name: "(c) edge-cache pass-through (rule `cache:false`)", url: `${edge.url}/pass/tp-${bench.runId}`, expect: "BYPASS" },
    { id: "edgeHit", name: "(d) edge-cache hit, Redis via gateway", url: `${edge.url}${bench.fresh("tp-hit")}`, expect: "HIT" },
    {
      id: "edgeSession",
      name: "(e) edge-cache hit + live session cookie (shared entry)",
      url: `${edgeSession.url}${bench.fresh("tp-session")}`,
      headers: { cookie },
      expect: "HIT",
    },
    { id: "edgeMemory", name: "(f) edge-cache hit, memory store", url: `${edgeMemory.url}${bench.fresh("tp-mem")}`, expect: "HIT" },
    { id: "naive", name: "(g) naive JS @upstash/redis worker hit (the peers' naive cache), same gateway", url: `${naive.url}${bench.fresh("tp-naive")}`, expect: "HIT" },
  ];
  const load1 = (t, seconds) => load(t.url, { seconds, connections: bench.connections, headers: t.headers });
  for (const t of targets) {
    const prime = await once(t.url, { headers: t.headers });
    if (prime.status !== 200) throw new Error(`${t.name} answered ${prime.status}`);
    const check = await once(t.url, { headers: t.headers });
    if (check.xcache !== t.expect) bench.note(`${t.name}: expected X-Cache ${t.expect}, got ${check.xcache} (${check.cacheStatus})`);
    if (check.setCookie) bench.note(`${t.name}: a hit carried Set-Cookie ${JSON.stringify(check.setCookie)}`);
    await load1(t, 1); // warm-up
    t.runs = [];
  }
  for (let run = 0; run < bench.runs; run++) {
    for (const t of targets) {
      const { samples, ...figures } = await load1(t, bench.seconds);
      t.runs.push(figures);
    }
  }
  for (const t of targets) {
    for (const r of t.runs) {
      const other = Object.entries(r.xcache).filter(([k]) => k !== (t.expect ?? "-"));
      if (other.length) bench.note(`${t.name}: unexpected X-Cache values during load: ${JSON.stringify(r.xcache)}`);
    }
  }
  return Object.fromEntries(targets.map((t) => [t.id, { name: t.name, expect: t.expect ?? "-", ...summary(t.runs) }]));
}

// The stats counters' periodic flush (one pipeline of INCRBYs from ctx.waitUntil, every few
// seconds per isolate) lands on whichever request is due: counted apart.
function isStatsFlush({ path, body }) {
  try {
    return path === "/pipeline" && JSON.parse(body).every((cmd) => String(cmd[0]).toUpperCase() === "INCRBY");
  } catch {
    return false;
  }
}

/** "pipeline[MGET,GET]"-style names of the Redis HTTP requests in `entries`. */
function describe(entries) {
  return entries
    .map(({ path, body }) => {
      try {
        const parsed = JSON.parse(body);
        if (path === "/pipeline" || path === "/multi-exec") return `${path.slice(1)}[${parsed.map((c) => c[0]).join(",")}]`;
        return String(parsed[0]);
      } catch {
        return path;
      }
    })
    .join(" ");
}

/** Redis HTTP requests per request kind, through the counting proxy; then a 500-request stampede. */
async function redisCounts(bench) {
  const { proxy } = bench;
  const c = bench.workers.edgeCounted.url;
  /** Redis requests caused by one request: before its answer ended, and after (background). */
  async function counted(name, url, headers = {}, settleMs = 400) {
    proxy.reset();
    const res = await once(url, { headers });
    const answered = Date.now();
    await sleep(settleMs);
    const all = proxy.requests();
    const log = all.filter((e) => !isStatsFlush(e));
    const during = log.filter((e) => e.at <= answered);
    const after = log.filter((e) => e.at > answered);
    return { name, xcache: res.xcache, during: during.length, after: after.length, flushes: all.length - log.length, commands: describe(during), bg: describe(after) };
  }
  const rows = [];
  rows.push(await counted("pass-through (rule `cache:false`), no cookie", `${c}/pass/r-${bench.runId}`));
  const missPath = bench.fresh("r-miss");
  rows.push(await counted("miss (cold key, alone), no cookie", `${c}${missPath}`));
  rows.push(await counted("hit, no cookie", `${c}${missPath}`));
  const stalePath = `${c}${bench.fresh("r-stale")}?cc=${encodeURIComponent(SWR)}`;
  await once(stalePath);
  await sleep(1600);
  rows.push(await counted("stale (swr), no cookie; after = the background refresh", stalePath, {}, 800));
  proxy.reset();
  const cookie = await sessionCookie(bench.workers.edgeCounted, `c-${bench.runId}`);
  const sharedPath = `${c}${bench.fresh("r-shared")}`;
  rows.push(await counted("miss with a session cookie (shared entry)", sharedPath, { cookie }));
  rows.push(await counted("hit with a session cookie (shared entry)", sharedPath, { cookie }));
  const perSession = `${c}${bench.fresh("r-vary")}?vary=Cookie`;
  rows.push(await counted("miss, per-session entry (`Vary: Cookie`)", perSession, { cookie }));
  rows.push(await counted("hit, per-session entry (`Vary: Cookie`)", perSession, { cookie }));
  rows.push(await counted("pass-through (rule `cache:false`) with a session cookie", `${c}/pass/r2-${bench.runId}`, { cookie }));
  for (const r of rows) {
    if (/^hit/.test(r.name) && r.xcache !== "HIT") bench.note(`Redis count "${r.name}": X-Cache ${r.xcache}`);
    if (/^hit/.test(r.name) && r.during + r.after !== 1) bench.note(`Redis count "${r.name}": ${r.during + r.after} Redis requests (docs §7.3: exactly 1)`);
  }
  // A 500-request stampede through the proxy: Redis requests per request, waiters' polls included.
  proxy.reset();
  const burst = await coldBurst(bench, bench.workers.edgeCounted, 500, 800);
  const commands = {};
  for (const cmd of proxy.commands()) commands[cmd[0]] = (commands[cmd[0]] ?? 0) + 1;
  const stampede = { requests: proxy.total(), flushes: proxy.requests().filter(isStatsFlush).length, commands, burst };
  return { rows, stampede };
}
