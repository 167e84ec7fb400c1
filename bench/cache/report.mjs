// The Markdown report bench/cache.mjs prints (and bench/RESULTS.md keeps), from the figures of
// the sections that ran (bench/cache/sections.mjs) and the peers' (bench/peers.json). A
// section's table or line is printed only when the scenarios it shows were measured.
import { fmt } from "../lib.mjs";

const ms = (v) => `${fmt(v)} ms`;
const plus = (v) => `${v >= 0 ? "+" : ""}${fmt(v)}`;
const fetches = (n) => `${n} fetch${n === 1 ? "" : "es"}`;

/** Markdown lines for `results` ({ meta, sections, interference, anomalies, totalSeconds }). */
export function renderReport(results, peers) {
  const { meta, sections: s } = results;
  const out = [];
  const p = (line = "") => out.push(line);
  const cold500 = s.cold?.[500];

  p(`# edge-cache cache benchmark`);
  p();
  p(`${meta.date}, node ${meta.node}, ${meta.cpus} CPUs (load generator, origin, redis-server, gateway and workerd share them),`);
  p(`Miniflare ${meta.miniflare}; real redis-server behind the redis-rest-gateway; counting origin on 127.0.0.1.`);
  p(`Medians of ${meta.runs} runs; raw latencies from each request's start (no coordinated-omission correction).`);
  p(`Sections run: ${meta.sections.join(", ")}.`);
  p();

  // --- 1: the peers' rows ------------------------------------------------------------------
  const peerCells = (key) => ["naive", "nginx", "varnish"].map((peer) => peers.scenarios[key][peer].text).join(" | ");
  const rows = [];
  if (cold500) {
    const m = cold500.median;
    rows.push(["cold500", `${m.fetches} (runs: ${cold500.runs.map((r) => r.fetches).join(", ")})`]);
    rows.push(["wait500", `${plus(m.wp50)} / ${plus(m.wp99)} ms`]);
  }
  if (s.fast) rows.push(["origin100", `${ms(s.fast.median.p50)} p50 (p99 ${ms(s.fast.median.p99)}; fetches ${s.fast.median.fetches})`]);
  if (s.slow) {
    const m = s.slow.median;
    rows.push(["slow6s", `${fetches(m.fetches)}, p50 ${fmt(m.p50 / 1000, 2)} s (max ${fmt(m.max / 1000, 2)} s)`]);
  }
  if (s.stale) {
    const m = s.stale.median;
    rows.push(["stale50", `${fetches(m.fetches)}, stale served in ${fmt(m.min)}–${fmt(m.max)} ms (${m.stale}/50 STALE; the same burst on the fresh entry: HIT in ${fmt(m.hitMin)}–${fmt(m.hitMax)} ms)`]);
  }
  if (s.steady) rows.push(["steady", `${s.steady.swr.median.perExpiry} fetch, ${ms(s.steady.swr.median.max)} (s-maxage=1, swr=30)`]);
  if (rows.length || s.naive) {
    const names = peers.peers;
    p(`## 1. The peers' rows (bench/peers.md), edge-cache beside the peers`);
    p();
    p(`| scenario | edge-cache | ${names.naive.label} | ${names.nginx.label} | ${names.varnish.label} |`);
    p(`|---|---|---|---|---|`);
    for (const [key, edge] of rows) p(`| ${peers.scenarios[key].title} | ${edge} | ${peerCells(key)} |`);
    p();
    if (s.naive) p(`The naive @upstash/redis worker measured here (one run, same setup): ${s.naive.fetches} origin fetches for 500 concurrent cold requests.`);
    if (cold500) {
      const m = cold500.median;
      p(`Details: every origin here answers in 800 ms unless said. "Beyond the origin" = a waiter's latency minus the origin's`);
      p(`nominal time (measured at the origin: ${fmt(m.originTime)} ms); waiters are all requests but the lock holder.`);
      p(`For scale: the same 500-request burst on the then cached key (all HIT) takes p50 ${fmt(m.warmP50)} / p99 ${fmt(m.warmP99)} ms here`);
      p(`(500 new connections through node, workerd and the gateway on 2 cores), and the lock holder reached the origin only`);
      p(`${fmt(m.originReached)} ms after the burst began; waiters ended p50 ${plus(m.ah50)} / p99 ${plus(m.ah99)} ms after the holder's answer (section 4).`);
    }
    if (s.steady) {
      const { swr, noSwr } = s.steady;
      p(`Steady load, ${meta.seconds} s runs: with swr=30 ${swr.runs.map((r) => `${r.fetches} fetches / ${r.expiries} expiries`).join("; ")}; p50 ${fmt(swr.median.p50, 2)} ms, ${fmt(swr.median.rps)} req/s.`);
      p(`Without stale-while-revalidate (s-maxage=1 only, every expiry is a miss behind the lock): ${noSwr.median.perExpiry} fetch per expiry, worst latency ${ms(noSwr.median.max)}`);
      p(`(runs: ${noSwr.runs.map((r) => `${r.fetches} fetches / ${r.expiries} expiries, max ${fmt(r.max)} ms`).join("; ")}).`);
    }
    p();
  }

  // --- 2: hit-path throughput --------------------------------------------------------------
  if (s.throughput) {
    const t = s.throughput;
    p(`## 2. Hit-path throughput, ${meta.connections} keep-alive connections, ${meta.seconds} s per run, median of ${meta.runs}, runs interleaved`);
    p();
    p(`| target | requests/s | p50 ms | p99 ms | errors | X-Cache | vs JS pass-through |`);
    p(`|---|---|---|---|---|---|---|`);
    const baseRps = t.js.median.rps;
    for (const target of Object.values(t)) {
      const errors = target.runs.reduce((sum, r) => sum + r.errors, 0);
      const seen = [...new Set(target.runs.flatMap((r) => Object.keys(r.xcache)))].join(", ");
      p(`| ${target.name} | ${fmt(target.median.rps)} | ${fmt(target.median.p50, 2)} | ${fmt(target.median.p99, 2)} | ${errors} | ${seen} | ${fmt(target.median.rps / baseRps, 2)} |`);
    }
    const ratio = (id) => fmt(t[id].median.rps / baseRps, 2);
    p();
    p(`Figure of merit, edge-cache hit (Redis) / JS pass-through: **${ratio("edgeHit")}**`);
    p(`(with a session: ${ratio("edgeSession")}; memory store: ${ratio("edgeMemory")}; edge-cache pass-through: ${ratio("edgePass")};`);
    p(`the naive @upstash/redis hit measured here: ${ratio("naive")}).`);
    p();
    p(`The peers (bench/peers.md), for comparison: ${peers.throughput.tool}; wrk is a different load tool, so compare ratios, not requests/s.`);
    p();
    p(`| target | requests/s | ratio |`);
    p(`|---|---|---|`);
    for (const row of peers.throughput.rows) p(`| ${row.target} | ${fmt(row.rps)} | ${fmt(row.ratio, 2)} |`);
    p();
  }

  // --- 3: Redis requests per request -------------------------------------------------------
  if (s.redis) {
    const { rows: counted, stampede } = s.redis;
    p(`## 3. Redis HTTP requests per request (counting proxy between the worker and the gateway)`);
    p();
    p(`"During" = received by Redis before the client's answer ended; "after" = after it (background work, \`ctx.waitUntil\`).`);
    p(`The periodic stats flush (one pipeline of INCRBYs per isolate every few seconds, from \`ctx.waitUntil\`) is not`);
    p(`counted in either; "flush" says whether one happened to land on that request.`);
    p();
    p(`| request | X-Cache | Redis requests during | after | commands during | commands after | flush |`);
    p(`|---|---|---|---|---|---|---|`);
    for (const r of counted) {
      p(`| ${r.name} | ${r.xcache} | ${r.during} | ${r.after} | ${r.commands || "—"} | ${r.bg || "—"} | ${r.flushes || ""} |`);
    }
    p();
    p(`500 concurrent requests for a cold key (800 ms origin) through the proxy: ${stampede.requests} Redis HTTP requests in all`);
    p(`(${fmt(stampede.requests / 500, 2)} per request, ${stampede.flushes} of them stats flushes; commands ${JSON.stringify(stampede.commands)}),`);
    p(`${stampede.burst.fetches} origin fetch, waiters p50/p99 ${plus(stampede.burst.wp50)} / ${plus(stampede.burst.wp99)} ms beyond the origin (the proxy adds its own latency).`);
    p();
  }

  // --- 4: cold keys ------------------------------------------------------------------------
  if (s.cold) {
    p(`## 4. Cold key: origin fetches and waiter latency (800 ms origin), median of ${meta.runs}`);
    p();
    p(`| concurrent requests | origin fetches (each run) | waiters p50 / p99 / max beyond the 800 ms origin | holder reached the origin after | waiters p50 / p99 after the holder's answer | same burst on the cached key (all HIT): p50 / p99 | errors |`);
    p(`|---|---|---|---|---|---|---|`);
    for (const [n, { runs, median: m }] of Object.entries(s.cold)) {
      p(`| ${n} | ${runs.map((r) => r.fetches).join(", ")} | ${plus(m.wp50)} / ${plus(m.wp99)} / ${plus(m.wmax)} ms | ${fmt(m.originReached)} ms | ${plus(m.ah50)} / ${plus(m.ah99)} ms | ${fmt(m.warmP50)} / ${fmt(m.warmP99)} ms | ${runs.reduce((sum, r) => sum + r.errors, 0)} |`);
    }
    p();
    p(`"Holder reached the origin after": from the first request's start to the origin receiving the one fetch (each request`);
    p(`first does a lookup and a \`SET NX\` through the gateway). "After the holder's answer": a waiter's answer ended this`);
    p(`long after the lock holder's did (the goal in docs §4.6: p99 within 100 ms). The cached-key burst is the floor this`);
    p(`machine sets for n simultaneous new connections through workerd and Redis.`);
    p();
  }

  // --- 5: size -----------------------------------------------------------------------------
  if (s.size) {
    p(`## 5. Size`);
    p();
    p(`build/index_bg.wasm: ${fmt(s.size.rawBytes)} bytes raw, ${fmt(s.size.gzipBytes)} bytes gzip -9 (built ${s.size.builtAt}).`);
    p();
  }

  p(`## Other load on the machine during the run`);
  p();
  p(`| section | duration | CPU used by processes outside this benchmark | busiest |`);
  p(`|---|---|---|---|`);
  for (const sec of results.interference) {
    p(`| ${sec.name} | ${fmt(sec.seconds)} s | ${fmt(sec.cpuSeconds, 1)} CPU-s (${fmt((100 * sec.cpuSeconds) / (sec.seconds * meta.cpus))}% of ${meta.cpus} CPUs) | ${sec.top.join(", ") || "—"} |`);
  }
  p();
  p(`## Anomalies`);
  p();
  if (results.anomalies.length === 0) p(`None seen (no origin fetch count above 1, no unexpected X-Cache, no errors).`);
  for (const a of results.anomalies) p(`- ${a}`);
  p();
  p(`Total bench time: ${fmt(results.totalSeconds)} s.`);
  return out;
}
