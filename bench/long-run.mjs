// The long run (issue 14 item 3): sustained closed-loop load on edge-cache in Miniflare, over
// many distinct keys, for a minute or more, with workerd's resident memory (VmRSS from /proc)
// sampled every second. After the warm-up, RSS may grow by at most the configured per-isolate
// caps plus 10 MiB: the poll board's bound (engine/poll_board.rs MAX_READY_BYTES, 8 MiB) and
// CACHE_L1_BYTES (the worker's default, 4 MiB, unless set in the environment, which is then
// passed to the worker). Growth is peak against peak: workerd's RSS moves in a sawtooth, so its
// level at the warm-up's end is the highest sample of the warm-up's last 30 s. The worker's own
// memory (wasm + live JS heap) gets the same allowance. Exit status 1 when either grows past it.
//
//   node bench/long-run.mjs                          # 60 s after a 10 s warm-up
//   LONG_RUN_SECONDS=300 node bench/long-run.mjs     # longer
//
// Settings (environment): LONG_RUN_SECONDS (60), LONG_RUN_WARMUP_SECONDS (10), LONG_RUN_KEYS
// (100000 distinct URLs), LONG_RUN_CONNECTIONS (16 keep-alive connections), LONG_RUN_BASELINE
// (1: then the same load on bench/js-passthrough-worker.mjs, what workerd itself does; 0: skip),
// CACHE_L1_BYTES and CACHE_L1_TTL_MS (passed to the worker as they are). Needs `npm run build` and
// target/release/redis-rest-gateway. Linux only (/proc).
import { readFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import WebSocket from "ws";

import { descendants, fmt, median, sleep, startBenchServices, watchForeignCpu } from "./lib.mjs";
import { freePort } from "../tests/support/services.mjs";
import { workerOptions } from "../tests/support/worker-options.mjs";

const MIB = 1024 * 1024;
/** engine/poll_board.rs MAX_READY_BYTES: what waiters' shared polls may hold per isolate. */
const POLL_BOARD_BYTES = 8 * MIB;
const SLACK_BYTES = 10 * MIB;

const envNumber = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: not a non-negative number: ${raw}`);
  return n;
};

const SECONDS = envNumber("LONG_RUN_SECONDS", 60);
const WARMUP = envNumber("LONG_RUN_WARMUP_SECONDS", 10);
const KEYS = envNumber("LONG_RUN_KEYS", 100_000);
const CONNECTIONS = envNumber("LONG_RUN_CONNECTIONS", 16);
/** The L1's cap: the worker's default (docs §1) unless set. */
const L1_BYTES = envNumber("CACHE_L1_BYTES", 4 * MIB);
const BASELINE = envNumber("LONG_RUN_BASELINE", 1) !== 0;

/** workerd's resident set in bytes (VmRSS), or NaN once it is gone. */
function rssOf(pid) {
  try {
    const kb = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB/m);
    return kb ? Number(kb[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * The worker's own memory, read through workerd's V8 inspector: the wasm linear memory (the
 * Rust heap: every per-isolate structure of edge-core lives there) and the JS heap in use.
 * `Runtime.queryObjects` runs a full garbage collection first, so the JS figure is live data.
 */
async function inspectWorker(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.id.startsWith("core:user:"));
  if (!target) throw new Error("no user worker in the inspector's targets");
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let nextId = 0;
  let context;
  const pending = new Map();
  ws.on("message", (raw) => {
    const message = JSON.parse(raw);
    if (message.method === "Runtime.executionContextCreated") context = message.params.context.id;
    const resolve = pending.get(message.id);
    if (resolve) {
      pending.delete(message.id);
      resolve(message);
    }
  });
  const call = (method, params = {}) =>
    Promise.race([
      new Promise((resolve) => {
        const id = ++nextId;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
      sleep(5000).then(() => ({ error: { message: `${method}: no answer in 5 s` } })),
    ]);
  await call("Runtime.enable");
  return {
    /** { wasm, js } in bytes (NaN when the inspector did not answer). */
    async sample() {
      const heap = await call("Runtime.getHeapUsage");
      const proto = await call("Runtime.evaluate", { expression: "WebAssembly.Memory.prototype", contextId: context });
      let wasm = NaN;
      const protoId = proto.result?.result?.objectId;
      if (protoId) {
        const found = await call("Runtime.queryObjects", { prototypeObjectId: protoId });
        const arrayId = found.result?.objects?.objectId;
        if (arrayId) {
          const sizes = await call("Runtime.callFunctionOn", {
            objectId: arrayId,
            functionDeclaration: "function () { return this.map((m) => m.buffer.byteLength); }",
            returnByValue: true,
          });
          const list = sizes.result?.result?.value;
          if (Array.isArray(list)) wasm = list.reduce((a, b) => a + b, 0);
        }
      }
      const after = await call("Runtime.getHeapUsage");
      return { wasm, js: after.result?.usedSize ?? heap.result?.usedSize ?? NaN };
    },
    close() {
      ws.close();
    },
  };
}

/** Least-squares slope of bytes over seconds, in MiB per minute. */
function slopeMibPerMinute(samples) {
  const n = samples.length;
  if (n < 2) return NaN;
  const mx = samples.reduce((s, p) => s + p.t, 0) / n;
  const my = samples.reduce((s, p) => s + p.rss, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of samples) {
    num += (p.t - mx) * (p.rss - my);
    den += (p.t - mx) ** 2;
  }
  return den === 0 ? NaN : ((num / den) * 60) / MIB;
}

/**
 * Closed-loop load until `endAt` (performance.now()): each connection picks a random key and
 * sends the next request when the previous answer has ended. One request in ten varies on
 * Accept-Language (three languages), so the per-isolate Vary hints fill as well.
 */
async function sustain(url, endAt, counts) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const cc = encodeURIComponent("s-maxage=20, stale-while-revalidate=20");
  const langs = ["en", "fr", "de"];
  const one = () =>
    new Promise((resolve) => {
      const key = Math.floor(Math.random() * KEYS);
      const varies = key % 10 === 0;
      const path = `/k/${key}?cc=${cc}${varies ? "&vary=Accept-Language" : ""}`;
      const headers = varies ? { "accept-language": langs[key % 3] } : {};
      const req = http.get(`${url}${path}`, { agent, headers }, (res) => {
        res.resume();
        res.on("end", () => {
          const label = res.statusCode === 200 ? (res.headers["x-cache"] ?? "-") : `status ${res.statusCode}`;
          counts[label] = (counts[label] ?? 0) + 1;
          resolve();
        });
        res.on("error", () => resolve((counts.error = (counts.error ?? 0) + 1)));
      });
      req.setTimeout(30_000, () => req.destroy(new Error("timeout")));
      req.on("error", () => resolve((counts.error = (counts.error ?? 0) + 1)));
    });
  const loop = async () => {
    while (performance.now() < endAt) await one();
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, loop));
  agent.destroy();
}

/**
 * One worker in its own Miniflare under the load: warm-up, then the measured part with RSS
 * sampled every second. Resolves with the figures.
 */
async function measure({ label, script, bindings }) {
  const inspectorPort = await freePort();
  const mf = new Miniflare(workerOptions(script ? { script, bindings, inspectorPort } : { bindings, inspectorPort }));
  let inspector;
  try {
    const url = (await mf.ready).origin;
    inspector = await inspectWorker(inspectorPort);
    const workerd = [...descendants()].filter(([, p]) => p.comm === "workerd").map(([pid]) => pid);
    if (workerd.length !== 1) throw new Error(`expected one workerd below this process, found ${workerd.length}`);
    const pid = workerd[0];
    const started = performance.now();
    const warmEnd = started + WARMUP * 1000;
    const endAt = warmEnd + SECONDS * 1000;
    const counts = {};
    const warmCounts = {};
    const samples = [];
    const sampler = (async () => {
      while (performance.now() < endAt) {
        const t = (performance.now() - started) / 1000;
        const warm = performance.now() >= warmEnd;
        const own = await inspector.sample();
        samples.push({ t, rss: rssOf(pid), ...own, warm });
        await sleep(1000);
      }
    })();
    await sustain(url, warmEnd, warmCounts);
    await sustain(url, endAt, counts);
    await sampler;
    samples.push({ t: (performance.now() - started) / 1000, rss: rssOf(pid), ...(await inspector.sample()), warm: true });
    const after = samples.filter((s) => s.warm && Number.isFinite(s.rss));
    const baseline = after[0]?.rss ?? NaN;
    const peak = Math.max(...after.map((s) => s.rss));
    // workerd's RSS moves in a sawtooth of tens of MiB (V8's collections, its allocator), so
    // its level at the warm-up's end is the top of the teeth just before it: the highest
    // sample of the warm-up's last 30 s (or last half, for a shorter warm-up). Growth is then
    // peak against peak; one sample alone would measure where it fell on a tooth.
    const window = Math.min(30, WARMUP / 2);
    const level = Math.max(...samples.filter((s) => !s.warm && s.t >= WARMUP - window && Number.isFinite(s.rss)).map((s) => s.rss));
    const reference = Number.isFinite(level) ? level : baseline;
    // The worker's own memory: wasm linear memory plus live JS heap.
    const own = (s) => (Number.isFinite(s.wasm) ? s.wasm : 0) + s.js;
    const ownBaseline = after.length ? own(after[0]) : NaN;
    const ownPeak = Math.max(...after.map(own));
    return {
      label,
      pid,
      counts,
      warmCounts,
      after,
      baseline,
      reference,
      peak,
      growth: peak - reference,
      growthFromSample: peak - baseline,
      final: after.at(-1)?.rss ?? NaN,
      own,
      ownBaseline,
      ownPeak,
      ownGrowth: ownPeak - ownBaseline,
    };
  } finally {
    inspector?.close();
    await mf.dispose().catch(() => {});
  }
}

const mib = (b) => fmt(b / MIB, 1);
const tally = (counts) =>
  Object.entries(counts)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(", ");

async function main() {
  const foreign = watchForeignCpu();
  const { origin, gateway, stop } = await startBenchServices();
  try {
    const edgeBindings = {
      ORIGIN_URL: origin.url,
      UPSTASH_REDIS_REST_URL: gateway.url,
      UPSTASH_REDIS_REST_TOKEN: gateway.token,
    };
    for (const name of ["CACHE_L1_BYTES", "CACHE_L1_TTL_MS"]) {
      if (process.env[name]) edgeBindings[name] = process.env[name];
    }
    const runs = [];
    foreign.section("edge-cache");
    runs.push(await measure({ label: "edge-cache", bindings: edgeBindings }));
    if (BASELINE) {
      // The same load on the smallest JavaScript pass-through worker, in the same runtime:
      // what workerd itself does with this much traffic.
      foreign.section("JS pass-through");
      const script = fileURLToPath(new URL("./js-passthrough-worker.mjs", import.meta.url));
      runs.push(await measure({ label: "JS pass-through (baseline)", script, bindings: { ORIGIN_URL: origin.url } }));
    }
    const cap = POLL_BOARD_BYTES + L1_BYTES + SLACK_BYTES;
    const edge = runs[0];
    const rssWithin = edge.growth <= cap;
    const ownWithin = edge.ownGrowth <= cap;

    const out = [];
    out.push("# edge-cache long run");
    out.push("");
    out.push(`${new Date().toISOString()}, node ${process.version}, ${os.cpus().length} CPUs.`);
    out.push(
      `Each worker in its own Miniflare: ${SECONDS} s measured after a ${WARMUP} s warm-up; ${CONNECTIONS} keep-alive connections, ` +
        `closed loop, over ${fmt(KEYS)} distinct URLs (s-maxage=20, stale-while-revalidate=20; one in ten varies on ` +
        "Accept-Language); edge-cache on a real redis-server behind the gateway.",
    );
    out.push("");
    out.push(`| figure | ${runs.map((r) => r.label).join(" | ")} |`);
    out.push(`|---|${runs.map(() => "---|").join("")}`);
    const row = (name, f) => out.push(`| ${name} | ${runs.map(f).join(" | ")} |`);
    row("requests measured", (r) => {
      const n = Object.values(r.counts).reduce((a, b) => a + b, 0);
      return `${fmt(n)} (${fmt(n / SECONDS)}/s)`;
    });
    row("answers measured", (r) => tally(r.counts));
    row("answers in the warm-up", (r) => tally(r.warmCounts));
    row("workerd RSS at the end of the warm-up", (r) => `${mib(r.baseline)} MiB`);
    row("workerd RSS after it: median, peak, final", (r) => `${mib(median(r.after.map((s) => s.rss)))}, ${mib(r.peak)}, ${mib(r.final)} MiB`);
    row("workerd RSS level at the end of the warm-up (highest sample of its last 30 s)", (r) => `${mib(r.reference)} MiB`);
    row("growth after the warm-up (peak − that level): the verdict", (r) => `${mib(r.growth)} MiB`);
    row("peak − the one sample at the warm-up's end (the verdict until 2026-11-29)", (r) => `${mib(r.growthFromSample)} MiB`);
    row("RSS trend after the warm-up (least squares)", (r) => `${fmt(slopeMibPerMinute(r.after), 2)} MiB/min`);
    // Whether the level still moves at the end of the run: peak against peak, after the warm-up.
    row("RSS peak of the first 30 s after the warm-up → of the last 30 s", (r) => {
      const peakIn = (from, to) => Math.max(...r.after.filter((s) => s.t >= from && s.t < to).map((s) => s.rss));
      const start = r.after[0]?.t ?? 0;
      const end = r.after.at(-1)?.t ?? 0;
      return `${mib(peakIn(start, start + 30))} → ${mib(peakIn(end - 30, end + 1))} MiB`;
    });
    row("RSS growth per request measured", (r) => {
      const n = Object.values(r.counts).reduce((a, b) => a + b, 0);
      return `${fmt(r.growth / Math.max(1, n), 0)} bytes`;
    });
    row("the worker's own memory at the end of the warm-up (wasm linear memory + live JS heap)", (r) => `${mib(r.ownBaseline)} MiB`);
    row("its peak after the warm-up, and its growth", (r) => `${mib(r.ownPeak)} MiB, +${mib(r.ownGrowth)} MiB`);
    row("wasm linear memory: end of warm-up, peak", (r) =>
      Number.isFinite(r.after[0]?.wasm) ? `${mib(r.after[0].wasm)}, ${mib(Math.max(...r.after.map((s) => s.wasm)))} MiB` : "none",
    );
    out.push("");
    out.push(
      `Allowed growth for edge-cache: poll board ${mib(POLL_BOARD_BYTES)} + L1 ${mib(L1_BYTES)}` +
        `${process.env.CACHE_L1_BYTES ? "" : " (the default)"} + 10 MiB = ${mib(cap)} MiB. ` +
        `The worker's own memory: ${ownWithin ? "within the caps" : "OVER the caps"}; ` +
        `workerd's RSS: ${rssWithin ? "within the caps" : "OVER the caps"}.`,
    );
    for (const r of runs) {
      out.push("");
      out.push(`${r.label}, samples after the warm-up (s: RSS / own memory, MiB):`);
      out.push(r.after.map((s) => `${fmt(s.t)}: ${mib(s.rss)} / ${mib(r.own(s))}`).join(", "));
    }
    out.push("");
    out.push("Other load on the machine (CPU seconds used by processes outside this run):");
    for (const s of foreign.report()) {
      out.push(`- ${s.name}: ${fmt(s.cpuSeconds, 1)} CPU s in ${fmt(s.seconds, 1)} s${s.top?.length ? ` (${s.top.join(", ")})` : ""}`);
    }
    console.log(out.join("\n"));
    process.exitCode = ownWithin && rssWithin ? 0 : 1;
  } finally {
    foreign.stop?.();
    await stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
