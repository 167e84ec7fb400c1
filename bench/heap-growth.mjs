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

import { sleep, startBenchServices } from "./lib.mjs";
import { freePort } from "../tests/support/services.mjs";
import { workerOptions } from "../tests/support/worker-options.mjs";
import { connectInspector, retainers, tally } from "../tests/support/heap.mjs";

const [FIRST, SECOND] = [Number(process.argv[2] ?? 20), Number(process.argv[3] ?? 40)];
const KEYS = Number(process.env.HEAP_KEYS ?? 100_000);
const CONNECTIONS = 16;

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

const { origin, gateway, stop } = await startBenchServices();
const inspectorPort = await freePort();
const bindings = { ORIGIN_URL: origin.url, UPSTASH_REDIS_REST_URL: gateway.url, UPSTASH_REDIS_REST_TOKEN: gateway.token };
// HEAP_VARS: extra worker variables as JSON (e.g. {"CACHE_RULES": "..."}), to narrow a growth down.
Object.assign(bindings, JSON.parse(process.env.HEAP_VARS ?? "{}"));
const mf = new Miniflare(workerOptions({ bindings, inspectorPort }));
try {
  const url = (await mf.ready).origin;
  const ins = await connectInspector(inspectorPort);
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
  await stop();
}
