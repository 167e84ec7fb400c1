// The chaos soak (issue 12, docs §8.6): mixed traffic through two Miniflare instances (two
// isolates, as two locations would be) sharing one Redis, while Redis cycles through faults
// and the origin fails on some keys for a while. Used by tests/chaos.test.mjs (short) and
// bench/chaos.mjs (long, figures in bench/RESULTS.md).
//
//   const report = await runSoak({ seconds: 20 });   // report.violations must be empty
//
// Traffic, at `concurrency` clients, each request to one of the two workers at random:
// - 70% shared GETs over 10 keys (`/s/k0`…`/s/k9`: public, s-maxage=3,
//   stale-while-revalidate=10, stale-if-error=60; tagged `k<i>`);
// - 15% GETs of `/me` with one of 8 users' session cookies (cached per session: Vary: Cookie);
// - 8% anonymous GETs of `/me`;
// - 5% writes (POST `/s/k5`…`/s/k9`, which invalidate their URL), 2% purges of a tag
//   `k5`…`k9` through the admin API.
// Redis, through the fault-injecting proxy: 2.5 s calm, 2.5 s of a fault, in turn slow
// (1.5 s, over REDIS_TIMEOUT_MS), garbage, connection reset, HTTP 500. The origin answers 503
// (no-store) on k0…k2 from 35% to 65% of the run; those keys are never written or purged, so a
// copy inside stale-if-error exists for them once they were served.
//
// Violations: a 500 (the origin never sends one: it is the worker's), a body naming another
// user, a user shown to an anonymous client, a 503 on k0…k2 after one of them was served.
import { startOrigin } from "./origin.mjs";
import { startRedisProxy } from "./redis-proxy.mjs";
import { startGateway, startRedis } from "./services.mjs";
import { request, sleep, startWorker } from "./harness.mjs";

const SHARED = "public, s-maxage=3, stale-while-revalidate=10, stale-if-error=60";
const KEYS = 10;
const FAILING_KEYS = 3;
const WRITABLE_FROM = 5;
const USERS = 8;
const PHASE_MS = 2_500;
const FAULTS = [
  { name: "slow", mode: { delayMs: 1_500 } },
  { name: "garbage", mode: { garbage: true } },
  { name: "reset", mode: { refuse: true } },
  { name: "http-500", mode: { status: 500 } },
];
const SESSION_COOKIE = "__Host-session";
const ADMIN_TOKEN = "chaos-admin-token-0123456789abcdef";

export async function runSoak({ seconds = 20, concurrency = 10, vars = {}, log = () => {} } = {}) {
  const cleanups = [];
  try {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const gateway = await startGateway({ redisUrl: redis.url });
    cleanups.push(() => gateway.stop());
    const proxy = await startRedisProxy(gateway.url);
    cleanups.push(() => proxy.stop());
    const origin = await startOrigin();
    cleanups.push(() => origin.stop());
    const state = { failing: false, started: 0 };
    const fetches = { shared: 0, sharedDuringFaults: 0 };
    installRoutes(origin, state, fetches);
    const workerVars = {
      ORIGIN_URL: origin.url,
      UPSTASH_REDIS_REST_URL: proxy.url,
      UPSTASH_REDIS_REST_TOKEN: gateway.token,
      SESSION_SECRET: "chaos-session-secret-0123456789abcdef",
      ADMIN_TOKEN,
      ...vars,
    };
    const workers = [];
    for (let i = 0; i < 2; i += 1) {
      const worker = await startWorker(workerVars);
      cleanups.push(() => worker.stop());
      workers.push(worker);
    }
    const cookies = [];
    for (let u = 0; u < USERS; u += 1) {
      const res = await request(`${workers[u % 2].url}/login?user=u${u}`);
      const set = (res.headers["set-cookie"] ?? []).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
      if (!set) throw new Error(`login of u${u} set no cookie (${res.status})`);
      cookies.push(set.split(";")[0]);
    }

    const report = newReport();
    state.started = Date.now();
    const end = state.started + seconds * 1_000;
    const faults = cycleFaults(proxy, state, end, report, log);
    const clients = Array.from({ length: concurrency }, () =>
      client({ workers, cookies, state, end, report }),
    );
    await Promise.all([faults, ...clients]);
    proxy.fault(null);
    report.originFetches = fetches.shared;
    report.originFetchesDuringFaults = fetches.sharedDuringFaults;
    return summarise(report);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // keep stopping the rest
      }
    }
  }
}

function installRoutes(origin, state, fetches) {
  const served = new Array(KEYS).fill(0);
  for (let k = 0; k < KEYS; k += 1) {
    origin.route(`/s/k${k}`, ({ req, res }) => {
      if (req.method === "POST") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("written");
        return;
      }
      fetches.shared += 1;
      if (state.fault) fetches.sharedDuringFaults += 1;
      const elapsed = (Date.now() - state.started) / state.length;
      if (k < FAILING_KEYS && state.started && elapsed >= 0.35 && elapsed < 0.65) {
        res.writeHead(503, { "content-type": "text/plain", "cache-control": "no-store" });
        res.end("origin down");
        return;
      }
      served[k] += 1;
      res.writeHead(200, { "content-type": "text/plain", "cache-control": SHARED, "cache-tag": `k${k}` });
      res.end(`k${k} v${served[k]}`);
    });
  }
  origin.route("/login", ({ req, res }) => {
    const user = new URL(req.url, "http://o").searchParams.get("user");
    res.writeHead(200, { "content-type": "text/plain", "edge-session-set": JSON.stringify({ user }) });
    res.end("logged in");
  });
  origin.route("/me", ({ req, res }) => {
    const status = req.headers["edge-session-status"];
    if (status === "active") {
      const raw = req.headers["edge-session"];
      const user = raw ? JSON.parse(Buffer.from(raw, "base64url").toString("utf8")).user : "?";
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=5", vary: "Cookie" });
      res.end(`user=${user}`);
    } else if (status === "unavailable") {
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "no-store" });
      res.end("user=?");
    } else {
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=5", vary: "Cookie" });
      res.end("user=none");
    }
  });
}

/** Calm and faulty phases in turn until `end`; records when Redis answered again. */
async function cycleFaults(proxy, state, end, report, log) {
  state.length = end - state.started;
  let i = 0;
  while (Date.now() < end) {
    await sleep(Math.min(PHASE_MS, Math.max(0, end - Date.now())));
    if (Date.now() >= end) break;
    const fault = FAULTS[i % FAULTS.length];
    i += 1;
    log(`# ${((Date.now() - state.started) / 1000).toFixed(1)} s: Redis ${fault.name}`);
    proxy.fault(fault.mode);
    state.fault = fault.name;
    await sleep(Math.min(PHASE_MS, Math.max(0, end - Date.now())));
    proxy.fault(null);
    state.fault = null;
    state.healedAt = Date.now();
    state.awaitingRecovery = fault.name;
  }
}

async function client({ workers, cookies, state, end, report }) {
  while (Date.now() < end) {
    const worker = workers[Math.floor(Math.random() * workers.length)];
    const roll = Math.random();
    const duringFault = Boolean(state.fault);
    try {
      if (roll < 0.7) {
        const k = Math.floor(Math.random() * KEYS);
        const res = await request(`${worker.url}/s/k${k}`);
        record(report, res, duringFault);
        report.sharedGets += 1;
        if (duringFault) report.sharedGetsDuringFaults += 1;
        noteRecovery(report, state, res);
        if (res.status === 200) report.servedKeys.add(k);
        if (res.status >= 500 && k < FAILING_KEYS && report.servedKeys.has(k)) {
          report.violations.push(`origin ${res.status} reached a client for k${k}, which had a copy`);
        }
      } else if (roll < 0.85) {
        const u = Math.floor(Math.random() * cookies.length);
        const res = await request(`${worker.url}/me`, { headers: { cookie: cookies[u] } });
        record(report, res, duringFault);
        const text = res.text();
        if (res.status === 200 && text !== `user=u${u}` && text !== "user=?") {
          report.violations.push(`u${u} was answered ${JSON.stringify(text)}`);
        }
      } else if (roll < 0.93) {
        const res = await request(`${worker.url}/me`);
        record(report, res, duringFault);
        if (res.status === 200 && res.text() !== "user=none") {
          report.violations.push(`an anonymous client was answered ${JSON.stringify(res.text())}`);
        }
      } else if (roll < 0.98) {
        const k = WRITABLE_FROM + Math.floor(Math.random() * (KEYS - WRITABLE_FROM));
        record(report, await request(`${worker.url}/s/k${k}`, { method: "POST", body: "x" }), duringFault);
      } else {
        const k = WRITABLE_FROM + Math.floor(Math.random() * (KEYS - WRITABLE_FROM));
        const res = await request(`${worker.url}/__edge/purge`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({ tags: [`k${k}`] }),
        });
        // A purge while Redis is down answers 503 by design (docs §6.4): not the cache's 500.
        report.purges[res.status] = (report.purges[res.status] ?? 0) + 1;
      }
    } catch (error) {
      report.violations.push(`request failed: ${error.message}`);
    }
  }
}

function newReport() {
  return {
    requests: 0,
    statuses: {},
    xCache: {},
    sharedGets: 0,
    sharedGetsDuringFaults: 0,
    servedKeys: new Set(),
    purges: {},
    recoveries: [],
    violations: [],
  };
}

function record(report, res, duringFault) {
  report.requests += 1;
  report.statuses[res.status] = (report.statuses[res.status] ?? 0) + 1;
  const xc = res.headers["x-cache"] ?? "none";
  const key = duringFault ? `${xc} (fault)` : xc;
  report.xCache[key] = (report.xCache[key] ?? 0) + 1;
  if (res.status === 500) report.violations.push(`500: ${res.text().slice(0, 120)}`);
}

/** The first HIT from Redis (no `redis-unavailable`) after each fault ends. */
function noteRecovery(report, state, res) {
  if (!state.awaitingRecovery || res.headers["x-cache"] !== "HIT") return;
  if (/redis-unavailable/.test(res.headers["cache-status"] ?? "")) return;
  report.recoveries.push({ fault: state.awaitingRecovery, ms: Date.now() - state.healedAt });
  state.awaitingRecovery = null;
}

function summarise(report) {
  const offload = 1 - report.originFetches / Math.max(1, report.sharedGets);
  const faultOffload = 1 - report.originFetchesDuringFaults / Math.max(1, report.sharedGetsDuringFaults);
  const ms = report.recoveries.map((r) => r.ms).sort((a, b) => a - b);
  return {
    ...report,
    servedKeys: [...report.servedKeys].sort(),
    offload,
    faultOffload,
    recoveryMedianMs: ms.length ? ms[Math.floor(ms.length / 2)] : null,
    recoveryMaxMs: ms.length ? ms[ms.length - 1] : null,
  };
}

/** The report as the lines the soak prints. */
export function formatReport(r) {
  const pct = (x) => `${(x * 100).toFixed(1)}%`;
  return [
    `requests ${r.requests}; shared GETs ${r.sharedGets} (${r.sharedGetsDuringFaults} during Redis faults)`,
    `origin fetches for shared GETs ${r.originFetches} (${r.originFetchesDuringFaults} during faults)`,
    `offload ${pct(r.offload)} overall, ${pct(r.faultOffload)} during Redis faults`,
    `statuses ${JSON.stringify(r.statuses)}`,
    `X-Cache ${JSON.stringify(r.xCache)}`,
    `purges by status ${JSON.stringify(r.purges)}`,
    `first HIT from Redis after a fault ends: median ${r.recoveryMedianMs} ms, max ${r.recoveryMaxMs} ms ` +
      `(${r.recoveries.map((x) => `${x.fault} ${x.ms}`).join(", ")})`,
    `violations ${r.violations.length}${r.violations.length ? `: ${r.violations.slice(0, 10).join("; ")}` : ""}`,
  ];
}
