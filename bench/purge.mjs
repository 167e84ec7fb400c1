// Purge cost: fills N entries under one tag (and one prefix) through the worker, with real
// Redis behind the gateway, then times a tag purge, a prefix purge and a URL purge. A purge
// reads the index sets it needs and deletes what they name, so its time should grow with the
// entries purged, not with the keyspace: the run also fills a second, untouched population of
// the same size and shows that it does not slow the purge down.
//
//   npm run build && node bench/purge.mjs            # N = 10000; BENCH_PURGE_N to change
import { performance } from "node:perf_hooks";

import { startStack } from "../tests/support/harness.mjs";

const N = Number(process.env.BENCH_PURGE_N ?? 10_000);
const TOKEN = "bench-purge-token";
const CONCURRENCY = 50;

const stack = await startStack({
  redis: true,
  vars: {
    ADMIN_TOKEN: TOKEN,
    CACHE_RULES: JSON.stringify([
      { path: "/bulk/*", ttl: 600, tags: ["bulk"] },
      { path: "/other/*", ttl: 600, tags: ["other"] },
    ]),
  },
});
const stopAll = () => stack.stop();
process.on("SIGINT", async () => {
  await stopAll();
  process.exit(130);
});

async function fill(prefix) {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      const res = await fetch(`${stack.worker.url}${prefix}${i}`);
      await res.arrayBuffer();
      if (res.status !== 200) failed += 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { ms: performance.now() - started, failed };
}

async function purge(body) {
  const started = performance.now();
  const res = await fetch(`${stack.worker.url}/__edge/purge`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  return { ms: performance.now() - started, answer };
}

try {
  const bulk = await fill("/bulk/");
  const other = await fill("/other/");
  await new Promise((r) => setTimeout(r, 1_000)); // background stores land
  const byTag = await purge({ tags: ["bulk"] });
  const refill = await fill("/bulk/");
  await new Promise((r) => setTimeout(r, 1_000));
  const byPrefix = await purge({ prefix: "/bulk/" });
  const byUrl = await purge({ urls: [`${stack.worker.url}/other/1`] });
  const everything = await purge({ everything: true });
  const row = (what, r) => `| ${what} | ${r.answer.entries ?? "—"} | ${r.ms.toFixed(0)} |`;
  console.log(`\n## Purge cost (${new Date().toISOString().slice(0, 10)}, N = ${N}, worker in Miniflare, redis-server behind redis-rest-gateway)\n`);
  console.log(`filled ${N} tagged entries in ${(bulk.ms / 1000).toFixed(1)} s (${Math.round(N / (bulk.ms / 1000))} req/s through the worker, ${CONCURRENCY} concurrent; ${bulk.failed} failed), plus ${N} untouched others in ${(other.ms / 1000).toFixed(1)} s; refilled in ${(refill.ms / 1000).toFixed(1)} s\n`);
  console.log("| purge | entries | ms |");
  console.log("|---|---|---|");
  console.log(row(`tag with ${N} entries (keyspace ${2 * N} entries)`, byTag));
  console.log(row(`prefix /bulk/ (${N} entries)`, byPrefix));
  console.log(row("one URL", byUrl));
  console.log(row("everything (version bump)", everything));
} finally {
  await stopAll();
}
