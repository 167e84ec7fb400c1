// CPU per request (issue 11): workerd's own CPU time (user + sys from /proc/<workerd pid>/stat)
// divided by the requests served, for edge-cache's paths beside two JavaScript baselines, in one
// run:
//
//   JS pass-through            bench/js-passthrough-worker.mjs
//   JS pass, edge's work       bench/js-pass-same-work-worker.mjs (header lists, abort signal,
//                              no-store, deadline, rebuilt response: no wasm)
//   JS answer from a Map       bench/js-memory-worker.mjs (a floor for the memory hit)
//   JS @upstash/redis, hit     bench/js-upstash-worker.mjs (the peers' naive cache), bundled
//   edge-cache hit             Redis through redis-rest-gateway in front of redis-server
//   edge-cache hit + session   the same with a live session cookie (SESSION_SECRET set)
//   edge-cache memory hit      the embedded memory store
//   edge-cache pass-through    a CACHE_RULES `cache: false` path, Redis configured
//   edge-cache miss            every request a fresh key: lock, origin fetch, fill (Redis)
//
// Each measurement starts the target in a Miniflare instance of its own, warms it up, reads
// workerd's CPU, sends the requests (8 keep-alive connections, a 2 KB JSON body), reads it again
// and disposes the instance: one workerd runs at a time. Runs are interleaved (every target once
// per run) and the table gives the medians. Other processes' CPU during the run is reported: on
// a busy machine compare the ratio column, not the absolute figures.
//
//   npm run build && cargo build --release -p redis-rest-gateway
//   node bench/cpu.mjs [--requests 4000] [--runs 3] [--connections 8] [--only edge-hit,js-pass]
//                      [--warmup 300] [--compare DIR]
//   --warmup N: requests sent before each measurement (a longer one changed nothing measurable:
//   V8's tier-up of the wasm is done within the first few hundred).
//   --compare DIR: every edge-cache target again with the build in DIR (laid out as build/),
//   interleaved with build/'s in each run: two builds compared within one run.
import { randomBytes } from "node:crypto";
import { readFileSync, existsSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { Miniflare } from "miniflare";

import { median, fmt, startBenchServices, watchForeignCpu, workerdCpuSeconds } from "./lib.mjs";
import { bundleNaiveWorker } from "./cache/stack.mjs";
import { EDGE_SCRIPT, ROOT, workerOptions } from "../tests/support/worker-options.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const REQUESTS = Number(option("requests", 4000));
const RUNS = Number(option("runs", 3));
const CONNECTIONS = Number(option("connections", 8));
const WARMUP = Number(option("warmup", 300));
const BODY = "size=2048";
const progress = (text) => process.stderr.write(`[cpu ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

function get(agent, url, headers) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers }, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode, xcache: res.headers["x-cache"], setCookie: res.headers["set-cookie"] }));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

/** `n` requests over `connections` keep-alive connections; `pathOf(i)` names the i-th. */
async function drive(base, n, pathOf, headers) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const xcache = {};
  let errors = 0;
  let next = 0;
  const loop = async () => {
    while (next < n) {
      const i = next++;
      try {
        const res = await get(agent, `${base}${pathOf(i)}`, headers);
        if (res.status !== 200) errors++;
        const label = res.xcache ?? "-";
        xcache[label] = (xcache[label] ?? 0) + 1;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, loop));
  agent.destroy();
  return { xcache, errors };
}

async function main() {
  if (!existsSync(EDGE_SCRIPT)) throw new Error("build/ is missing: run `npm run build` first");
  const cleanups = [];
  const watch = watchForeignCpu();
  try {
    const { origin, gateway, stop } = await startBenchServices();
    cleanups.push(stop);
    const redisVars = { UPSTASH_REDIS_REST_URL: gateway.url, UPSTASH_REDIS_REST_TOKEN: gateway.token };
    const secret = randomBytes(32).toString("hex");
    const rules = JSON.stringify([{ path: "/pass/*", cache: false }]);
    const runId = Date.now().toString(36);
    const naive = bundleNaiveWorker(cleanups);
    const edge = (vars) => ({ bindings: { ORIGIN_URL: origin.url, CACHE_RULES: rules, CACHE_NAMESPACE: `cpu${runId}`, ...vars } });
    const hitPath = `/hit/${runId}?${BODY}`;
    const targets = [
      { id: "js-pass", name: "JS pass-through worker", spec: { script: path.join(ROOT, "bench", "js-passthrough-worker.mjs"), bindings: { ORIGIN_URL: origin.url } }, path: () => `/pass/x?cc=no-store&${BODY}`, expect: "-" },
      { id: "js-pass-work", name: "JS pass-through doing edge-cache's work around the fetch (no wasm)", spec: { script: path.join(ROOT, "bench", "js-pass-same-work-worker.mjs"), bindings: { ORIGIN_URL: origin.url } }, path: () => `/pass/x?cc=no-store&${BODY}`, expect: "BYPASS" },
      { id: "js-memory", name: "JS worker answering from a Map (a floor for the memory hit)", spec: { script: path.join(ROOT, "bench", "js-memory-worker.mjs"), bindings: { ORIGIN_URL: origin.url } }, path: () => hitPath, expect: "HIT" },
      { id: "js-upstash", name: "JS worker with `@upstash/redis`, cache hit", spec: { script: naive, bindings: { ORIGIN_URL: origin.url, ...redisVars } }, path: () => hitPath, expect: "HIT" },
      { id: "edge-hit", name: "edge-cache hit, Redis through the gateway", spec: edge(redisVars), path: () => hitPath, expect: "HIT" },
      { id: "edge-session", name: "edge-cache hit with a session, Redis", spec: edge({ ...redisVars, SESSION_SECRET: secret }), path: () => hitPath, expect: "HIT", session: true },
      { id: "edge-memory", name: "edge-cache hit, memory store", spec: edge({}), path: () => hitPath, expect: "HIT" },
      { id: "edge-pass", name: "edge-cache pass-through (rule `cache: false`)", spec: edge(redisVars), path: () => `/pass/x?cc=no-store&${BODY}`, expect: "BYPASS" },
      { id: "edge-miss", name: "edge-cache miss (lock, origin, fill), Redis", spec: edge(redisVars), path: null, expect: "MISS" },
    ];
    const only = option("only", null)?.split(",");
    let chosen = only ? targets.filter((t) => only.includes(t.id)) : targets;
    const compare = option("compare", null);
    if (compare) {
      const root = path.resolve(compare);
      const other = chosen
        .filter((t) => t.id.startsWith("edge-"))
        .map((t) => ({
          ...t,
          id: `${t.id}@compare`,
          name: `${t.name} [${compare}]`,
          spec: { ...t.spec, script: path.join(root, "worker", "shim.mjs"), modulesRoot: root },
        }));
      chosen = chosen.flatMap((t) => [t, ...other.filter((o) => o.id === `${t.id}@compare`)]);
    }
    if (!chosen.some((t) => t.id === "js-pass")) throw new Error("the JS pass-through is the baseline: keep js-pass in --only");
    for (const t of chosen) t.runs = [];

    let missSeq = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const target of chosen) {
        progress(`run ${run + 1}/${RUNS}: ${target.name}`);
        const mf = new Miniflare(workerOptions({ ...target.spec, name: target.id.replace("@", "-") }));
        try {
          const base = (await mf.ready).origin;
          let headers = {};
          if (target.session) {
            const login = await get(false, `${base}/login/${runId}?cc=no-store&session=${encodeURIComponent('{"user":"bench"}')}`, {});
            const cookie = (login.setCookie ?? []).map((c) => c.split(";")[0]).join("; ");
            if (!cookie) throw new Error("the login set no cookie");
            headers = { cookie };
          }
          const pathOf = target.path ?? ((i) => `/miss/${runId}-${++missSeq}-${i}?${BODY}`);
          await drive(base, WARMUP, pathOf, headers);
          watch.section(`${target.id} run ${run + 1}`);
          const before = workerdCpuSeconds();
          const t0 = performance.now();
          const { xcache, errors } = await drive(base, REQUESTS, pathOf, headers);
          const seconds = (performance.now() - t0) / 1000;
          const cpu = workerdCpuSeconds() - before;
          const expected = xcache[target.expect] ?? 0;
          if (errors > 0 || expected < REQUESTS * 0.99) {
            throw new Error(`${target.name}: ${errors} errors, X-Cache ${JSON.stringify(xcache)} (expected ${target.expect})`);
          }
          target.runs.push({ usPerRequest: (cpu * 1e6) / REQUESTS, rps: REQUESTS / seconds });
        } finally {
          await mf.dispose();
        }
      }
    }

    const interference = watch.report();
    watch.stop();
    const cpus = os.availableParallelism();
    const baseline = median(chosen.find((t) => t.id === "js-pass").runs.map((r) => r.usPerRequest));
    const upstash = chosen.find((t) => t.id === "js-upstash");
    const upstashUs = upstash ? median(upstash.runs.map((r) => r.usPerRequest)) : NaN;
    const miniflare = JSON.parse(readFileSync(path.join(ROOT, "node_modules", "miniflare", "package.json"), "utf8")).version;
    console.log(`\n## bench/cpu.mjs, ${new Date().toISOString().slice(0, 10)}\n`);
    console.log(
      `workerd CPU (user+sys, /proc) per request, Miniflare ${miniflare}, ${CONNECTIONS} keep-alive connections, ` +
        `a ${BODY.split("=")[1]}-byte JSON body, ${REQUESTS} requests per run after ${WARMUP} warm-up ones, ` +
        `median of ${RUNS} runs, one workerd at a time, ${cpus} CPUs\n`,
    );
    console.log("| target | workerd CPU µs/request | runs (µs) | ÷ JS pass-through | ÷ JS `@upstash/redis` hit | requests/s |");
    console.log("|---|---|---|---|---|---|");
    for (const t of chosen) {
      const us = median(t.runs.map((r) => r.usPerRequest));
      const rps = median(t.runs.map((r) => r.rps));
      const runs = t.runs.map((r) => fmt(r.usPerRequest)).join(", ");
      console.log(`| ${t.name} | ${fmt(us)} | ${runs} | ${fmt(us / baseline, 2)} | ${fmt(us / upstashUs, 2)} | ${fmt(rps)} |`);
    }
    const measuredSeconds = interference.reduce((s, x) => s + x.seconds, 0);
    const foreign = interference.reduce((s, x) => s + x.cpuSeconds, 0);
    const top = new Map();
    for (const sec of interference) {
      for (const entry of sec.top) {
        const [comm, cpu] = [entry.slice(0, entry.lastIndexOf(" ", entry.length - 3)), Number.parseFloat(entry.split(" ").at(-2))];
        top.set(comm, (top.get(comm) ?? 0) + cpu);
      }
    }
    const busiest = [...top].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([c, s]) => `${c} ${fmt(s, 1)} s`).join(", ");
    console.log(
      `\nOther processes used ${fmt(foreign, 1)} CPU-s during the ${fmt(measuredSeconds, 1)} s measured ` +
        `(${fmt((100 * foreign) / (measuredSeconds * cpus))}% of the machine${busiest ? `; ${busiest}` : ""}).`,
    );
  } finally {
    while (cleanups.length) {
      try {
        await cleanups.pop()();
      } catch {
        // keep stopping the rest
      }
    }
  }
}

try {
  await main();
  process.exit(0);
} catch (error) {
  console.error(error?.stack ?? error);
  process.exit(1);
}
