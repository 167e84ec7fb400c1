// Shared pieces of the benchmarks (bench/passthrough.mjs, bench/cache.mjs):
//
//   load(url, { seconds, connections, headers })  closed-loop keep-alive load, raw latencies
//   burst(url, n, { headers })                     n requests started at once, one connection each
//   once(url, { headers })                         one request on a fresh connection
//   startBenchOrigin()                             bench/origin-server.mjs in its own process
//   startBenchServices()                           that origin, a redis-server and the gateway
//   watchForeignCpu()                              CPU used by other processes meanwhile
//   readProcesses(), descendants(), workerdCpuSeconds()   CPU seconds and the process tree from /proc
//   median, percentile, fmt
//
// Every latency is measured from the moment the request is started to the end of its body; no
// coordinated-omission correction (no synthetic samples), so a slow answer counts once.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { fileURLToPath } from "node:url";

import { startGateway, startRedis } from "../tests/support/services.mjs";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The middle value (the upper one of the two middles for an even count). */
export function median(values) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return NaN;
  const sorted = finite.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The q-quantile of an array sorted ascending (nearest rank, no interpolation). */
export function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** A number for a table cell: `digits` decimals, thousands separators, "n/a" when not finite. */
export function fmt(value, digits = 0) {
  if (!Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function get(url, { agent, headers = {}, timeoutMs = 60_000 }) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, (res) => {
      res.resume();
      res.on("end", () =>
        resolve({
          status: res.statusCode,
          xcache: res.headers["x-cache"],
          cacheStatus: res.headers["cache-status"],
          setCookie: res.headers["set-cookie"],
        }),
      );
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

/** One request on a fresh connection: { status, xcache, cacheStatus, setCookie, ms }. */
export async function once(url, { headers = {}, timeoutMs } = {}) {
  const started = performance.now();
  const res = await get(url, { agent: false, headers, timeoutMs });
  return { ...res, ms: performance.now() - started };
}

/**
 * `connections` closed loops over keep-alive connections, each sending its next request when
 * the previous answer has ended, for `seconds`. Resolves with { rps, p50, p99, max, count,
 * errors, xcache: {HIT: n, ...}, samples: [{ start, ms }] } (start: performance.now() at send).
 */
export async function load(url, { seconds, connections, headers = {}, keepSamples = false }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const latencies = [];
  const samples = [];
  const xcache = {};
  let errors = 0;
  const endAt = performance.now() + seconds * 1000;
  const loop = async () => {
    while (performance.now() < endAt) {
      const start = performance.now();
      try {
        const res = await get(url, { agent, headers });
        const ms = performance.now() - start;
        if (res.status === 200) {
          latencies.push(ms);
          if (keepSamples) samples.push({ start, ms, xcache: res.xcache });
        } else {
          errors++;
        }
        const label = res.xcache ?? "-";
        xcache[label] = (xcache[label] ?? 0) + 1;
      } catch {
        errors++;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, loop));
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies.at(-1) ?? NaN,
    count: latencies.length,
    errors,
    xcache,
    samples,
  };
}

/**
 * `n` requests for `url` started at once, each on its own connection. Resolves with one
 * { status, xcache, cacheStatus, ms, error, startEpoch, endEpoch } per request (ms from that
 * request's start; the epochs in ms since 1970, comparable with another process's Date.now()).
 */
export async function burst(url, n, { headers = {}, timeoutMs = 60_000 } = {}) {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const pending = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const done = (res) => {
      const end = performance.now();
      return { ...res, ms: end - start, startEpoch: performance.timeOrigin + start, endEpoch: performance.timeOrigin + end };
    };
    pending.push(
      get(url, { agent, headers, timeoutMs }).then(done, (error) => done({ status: 0, error: String(error?.message ?? error) })),
    );
  }
  const results = await Promise.all(pending);
  agent.destroy();
  return results;
}

/**
 * Starts bench/origin-server.mjs in its own process (so it does not share the load generator's
 * event loop) and resolves with { url, stats(path), stop() }. The child also exits when this
 * process goes away (IPC disconnect).
 */
export async function startBenchOrigin() {
  const script = fileURLToPath(new URL("./origin-server.mjs", import.meta.url));
  const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
  };
  process.on("exit", kill);
  const port = await new Promise((resolve, reject) => {
    child.stdout.once("data", (d) => resolve(Number(String(d).trim())));
    child.once("exit", () => reject(new Error("bench origin exited before listening")));
  });
  const url = `http://127.0.0.1:${port}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  return {
    url,
    /** { count, starts: [epoch ms], ends: [epoch ms] } of requests for one path. */
    async stats(path) {
      const body = await new Promise((resolve, reject) => {
        http
          .get(`${url}/__bench/stats?path=${encodeURIComponent(path)}`, { agent }, (res) => {
            const chunks = [];
            res.on("data", (c) => chunks.push(c));
            res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
          })
          .on("error", reject);
      });
      return JSON.parse(body);
    },
    async stop() {
      agent.destroy();
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(kill, 2000);
      await exited;
      clearTimeout(timer);
      process.off("exit", kill);
    },
  };
}

/**
 * The bench origin, a real redis-server on a spare port and the gateway in front of it:
 * { origin, redis, gateway, stop() }, stop() stopping all three (what started, if one fails).
 */
export async function startBenchServices() {
  const started = [];
  const stop = async () => {
    for (const service of started.reverse()) await service.stop().catch(() => {});
  };
  try {
    const origin = await startBenchOrigin();
    started.push(origin);
    const redis = await startRedis();
    started.push(redis);
    const gateway = await startGateway({ redisUrl: redis.url });
    started.push(gateway);
    return { origin, redis, gateway, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** USER_HZ on Linux: /proc's CPU times are in these ticks. */
const TICKS = 100;

/**
 * Every process in /proc: pid -> { comm, ppid, cpu } (cpu = user + sys seconds, all threads).
 * Empty on a machine without /proc; a process that exits meanwhile is left out.
 */
export function readProcesses() {
  const procs = new Map();
  let entries = [];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return procs;
  }
  for (const pid of entries) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const fields = stat.slice(close + 2).split(" ");
      procs.set(Number(pid), { comm, ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / TICKS });
    } catch {
      // gone
    }
  }
  return procs;
}

/** Whether `pid` is `root` or below it in `procs`' process tree. */
export function isBelow(procs, pid, root = process.pid) {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === root) return true;
    p = procs.get(p)?.ppid ?? 0;
  }
  return false;
}

/** The processes below `root` (not itself): pid -> { comm, ppid, cpu }. */
export function descendants(root = process.pid) {
  const procs = readProcesses();
  return new Map([...procs].filter(([pid]) => pid !== root && isBelow(procs, pid, root)));
}

/** User + sys seconds of every `workerd` below this process; throws when there is none. */
export function workerdCpuSeconds() {
  const workerd = [...descendants().values()].filter((p) => p.comm === "workerd");
  if (workerd.length === 0) throw new Error("no workerd process found under this one");
  return workerd.reduce((sum, p) => sum + p.cpu, 0);
}

/**
 * Watches the CPU time used by processes outside this process tree (other test runs, builds)
 * while a benchmark runs, sampling /proc every `everyMs`: `section(name)` starts a new section,
 * `report()` answers [{ name, seconds, cpuSeconds, top }] (top: the busiest other commands).
 * On a machine without /proc it reports nothing.
 */
export function watchForeignCpu({ everyMs = 1000 } = {}) {
  const seen = new Map(); // pid -> { comm, first, last }
  const sections = [];
  let started = false;
  const sample = () => {
    const procs = readProcesses();
    for (const [pid, info] of procs) {
      if (isBelow(procs, pid)) continue;
      const s = seen.get(pid);
      // A process first seen after the watch began started during it: all its CPU counts.
      if (!s) seen.set(pid, { comm: info.comm, first: started ? 0 : info.cpu, last: info.cpu });
      else s.last = info.cpu;
    }
    started = true;
  };
  const snapshot = () => {
    const byComm = new Map();
    let total = 0;
    for (const s of seen.values()) {
      const d = s.last - s.first;
      if (d <= 0) continue;
      total += d;
      byComm.set(s.comm, (byComm.get(s.comm) ?? 0) + d);
    }
    return { total, byComm };
  };
  let current = null;
  const close = () => {
    if (!current) return;
    sample();
    const now = snapshot();
    const top = [...now.byComm.entries()]
      .map(([comm, cpu]) => [comm, cpu - (current.at.byComm.get(comm) ?? 0)])
      .filter(([, cpu]) => cpu >= 0.5)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([comm, cpu]) => `${comm} ${cpu.toFixed(1)} s`);
    sections.push({
      name: current.name,
      seconds: (performance.now() - current.t) / 1000,
      cpuSeconds: now.total - current.at.total,
      top,
    });
    current = null;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return {
    section(name) {
      close();
      sample();
      current = { name, t: performance.now(), at: snapshot() };
    },
    report() {
      close();
      return sections.slice();
    },
    stop() {
      close();
      clearInterval(timer);
    },
  };
}
