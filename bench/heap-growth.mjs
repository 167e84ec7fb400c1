// What grows in the worker's JS heap under sustained load: two V8 heap snapshots through
// workerd's inspector, some seconds apart, and the object kinds whose count or size grew.
// A diagnostic for bench/long-run.mjs when the worker's own memory grows (issue 14 item 3).
//
//   npm run build && cargo build --release -p redis-rest-gateway
//   node bench/heap-growth.mjs [first-seconds] [second-seconds]   # defaults 20 40
// HEAP_KEYS (100000 distinct URLs), HEAP_VARS (extra worker variables as JSON, to narrow a
// growth down: e.g. {"UPSTASH_REDIS_REST_URL": ""} for the memory store), HEAP_RETAINERS
// (`type:name` of a kind that grew, e.g. `closure:_`: prints what holds a sample of them).
import http from "node:http";
import { Miniflare } from "miniflare";
import WebSocket from "ws";

import { sleep, startBenchOrigin } from "./lib.mjs";
import { freePort, startGateway, startRedis } from "../tests/support/services.mjs";
import { workerOptions } from "../tests/support/worker-options.mjs";

const [FIRST, SECOND] = [Number(process.argv[2] ?? 20), Number(process.argv[3] ?? 40)];
const KEYS = Number(process.env.HEAP_KEYS ?? 100_000);
const CONNECTIONS = 16;

async function inspector(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.id.startsWith("core:user:"));
  if (!target) throw new Error("no user worker in the inspector's targets");
  const ws = new WebSocket(target.webSocketDebuggerUrl, { maxPayload: 1 << 30 });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let nextId = 0;
  const pending = new Map();
  let chunks = [];
  ws.on("message", (raw) => {
    const message = JSON.parse(raw);
    if (message.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(message.params.chunk);
    const resolve = pending.get(message.id);
    if (resolve) {
      pending.delete(message.id);
      resolve(message);
    }
  });
  const call = (method, params = {}) =>
    new Promise((resolve) => {
      const id = ++nextId;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    async snapshot() {
      await call("HeapProfiler.enable");
      // (`HeapProfiler.collectGarbage` gets no answer from workerd; a snapshot collects first.)
      chunks = [];
      await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
      return JSON.parse(chunks.join(""));
    },
    close: () => ws.close(),
  };
}

/** Count and self size per "type:name" of a snapshot's nodes. */
function tally(snap) {
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [ti, ni, si] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const out = new Map();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + ti]];
    let name = snap.strings[snap.nodes[i + ni]];
    if (type === "string" || type === "concatenated string" || type === "sliced string") name = "(string)";
    if (type === "number") name = "(number)";
    const key = `${type}:${String(name).slice(0, 80)}`;
    const row = out.get(key) ?? { count: 0, size: 0 };
    row.count += 1;
    row.size += snap.nodes[i + si];
    out.set(key, row);
  }
  return out;
}

/**
 * What holds a sample of the objects `pick` selects: for each, a path of retainers (strong
 * edges only) towards the roots, avoiding the object's own cycles; paths counted.
 */
function retainers(snap, pick, depth = 6, sample = 300) {
  const nf = snap.snapshot.meta.node_fields, ef = snap.snapshot.meta.edge_fields;
  const types = snap.snapshot.meta.node_types[0], etypes = snap.snapshot.meta.edge_types[0];
  const W = nf.length, EW = ef.length;
  const [ti, ni, eci] = ["type", "name", "edge_count"].map((f) => nf.indexOf(f));
  const [eti, eni, eto] = ["type", "name_or_index", "to_node"].map((f) => ef.indexOf(f));
  const N = snap.nodes.length / W;
  const rev = Array.from({ length: N }, () => []);
  let e = 0;
  for (let n = 0; n < N; n++) {
    const count = snap.nodes[n * W + eci];
    for (let k = 0; k < count; k++, e += EW) {
      const et = etypes[snap.edges[e + eti]];
      if (et === "weak") continue;
      const to = snap.edges[e + eto] / W;
      const nm = et === "element" || et === "hidden" ? `[${snap.edges[e + eni]}]` : snap.strings[snap.edges[e + eni]];
      rev[to].push([n, `${et}:${nm}`]);
    }
  }
  const label = (n) => `${types[snap.nodes[n * W + ti]]}:${String(snap.strings[snap.nodes[n * W + ni]]).slice(0, 40)}`;
  const out = new Map();
  let seen = 0;
  for (let n = 0; n < N && seen < sample; n++) {
    if (!pick(types[snap.nodes[n * W + ti]], snap.strings[snap.nodes[n * W + ni]])) continue;
    seen++;
    let cur = n; const path = [label(n)]; const visited = new Set([n]);
    // Breadth-first to the nearest node not in this object's own cycle, then onwards.
    for (let d = 0; d < depth; d++) {
      const r = rev[cur].find(([from]) => !visited.has(from));
      if (!r) break;
      visited.add(r[0]);
      path.push(`<-${r[1]}- ${label(r[0])}`);
      cur = r[0];
    }
    const key = path.join(" ");
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

async function load(url, seconds) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const cc = encodeURIComponent("s-maxage=20, stale-while-revalidate=20");
  const endAt = performance.now() + seconds * 1000;
  let n = 0;
  const one = () =>
    new Promise((resolve) => {
      const key = Math.floor(Math.random() * KEYS);
      const varies = key % 10 === 0;
      const path = `/k/${key}?cc=${cc}${varies ? "&vary=Accept-Language" : ""}`;
      const req = http.get(`${url}${path}`, { agent, headers: varies ? { "accept-language": "fr" } : {} }, (res) => {
        res.resume();
        res.on("end", () => resolve(n++));
        res.on("error", resolve);
      });
      req.on("error", resolve);
    });
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < endAt) await one();
    }),
  );
  agent.destroy();
  return n;
}

const origin = await startBenchOrigin();
const redis = await startRedis();
const gateway = await startGateway({ redisUrl: redis.url });
const inspectorPort = await freePort();
const bindings = { ORIGIN_URL: origin.url, UPSTASH_REDIS_REST_URL: gateway.url, UPSTASH_REDIS_REST_TOKEN: gateway.token };
// HEAP_VARS: extra worker variables as JSON (e.g. {"CACHE_RULES": "..."}), to narrow a growth down.
Object.assign(bindings, JSON.parse(process.env.HEAP_VARS ?? "{}"));
const mf = new Miniflare(workerOptions({ bindings, inspectorPort }));
try {
  const url = (await mf.ready).origin;
  const ins = await inspector(inspectorPort);
  const log = (m) => console.error(`[heap ${new Date().toISOString().slice(11, 19)}] ${m}`);
  log("load");
  const first = await load(url, FIRST);
  log(`${first} requests; snapshot`);
  const a = tally(await ins.snapshot());
  log("load");
  const second = await load(url, SECOND);
  log(`${second} requests; snapshot`);
  await sleep(1000);
  const snapB = await ins.snapshot();
  const b = tally(snapB);
  if (process.env.HEAP_RETAINERS) {
    const [t, n] = process.env.HEAP_RETAINERS.split(":");
    const paths = retainers(snapB, (type, name) => type === t && name === n, 8, 400);
    for (const [p, c] of [...paths].sort((x, y) => y[1] - x[1]).slice(0, 8)) console.log(c, p);
  }
  ins.close();
  const rows = [...b].map(([k, v]) => {
    const was = a.get(k) ?? { count: 0, size: 0 };
    return { k, count: v.count, dcount: v.count - was.count, size: v.size, dsize: v.size - was.size };
  });
  rows.sort((x, y) => y.dsize - x.dsize);
  console.log(`# heap growth: ${first} requests, snapshot, ${second} more, snapshot`);
  console.log("| kind | count | +count | bytes | +bytes |\n|---|---|---|---|---|");
  for (const r of rows.slice(0, 30)) console.log(`| ${r.k} | ${r.count} | ${r.dcount} | ${r.size} | ${r.dsize} |`);
} finally {
  await mf.dispose().catch(() => {});
  await gateway.stop().catch(() => {});
  await redis.stop().catch(() => {});
  await origin.stop().catch(() => {});
}
