// The three ways bench/cache.mjs loads a worker, each on fresh paths (fresh cache keys) and
// each answering plain figures: a burst on a cold key, a burst just after expiry, and steady
// keep-alive load across expiries. `bench` is the run's context (bench/cache.mjs): origin,
// fresh(kind), note(anomaly), seconds, connections.
import { burst, load, once, percentile, sleep } from "../lib.mjs";

export const SWR = "s-maxage=1, stale-while-revalidate=30";

const sorted = (list) => list.slice().sort((a, b) => a - b);
const isCollapsed = (r) => /collapsed/.test(r.cacheStatus ?? "");

/**
 * n concurrent requests for a cold key behind an `originMs` origin, then (with `warm`) the same
 * burst again on the now cached key, as the floor this machine sets for n concurrent requests.
 * `reference`: a peer's worker, whose extra origin fetches are expected, not an anomaly.
 */
export async function coldBurst(bench, w, n, originMs, { warm = false, reference = false } = {}) {
  const p = bench.fresh(`cold${n}`);
  const url = `${w.url}${p}?ms=${originMs}`;
  const results = await burst(url, n, { timeoutMs: originMs + 60_000 });
  await sleep(200);
  const stats = await bench.origin.stats(p);
  const ok = results.filter((r) => r.status === 200);
  const errors = results.filter((r) => r.status !== 200);
  const holder = results.find((r) => r.xcache === "MISS" && !isCollapsed(r));
  const waiters = ok.filter((r) => r !== holder);
  const all = sorted(ok.map((r) => r.ms));
  const waiterMs = sorted(waiters.map((r) => r.ms));
  const phases = {};
  for (const r of results) {
    const k = r.status === 200 ? `${r.xcache}${isCollapsed(r) ? "+collapsed" : ""}` : `status ${r.status}`;
    phases[k] = (phases[k] ?? 0) + 1;
  }
  if (stats.count > 1 && !reference) {
    bench.note(`${n} concurrent cold requests (origin ${originMs} ms, path ${p}) caused ${stats.count} origin fetches; phases ${JSON.stringify(phases)}`);
  }
  if (errors.length) bench.note(`${errors.length} of ${n} cold requests failed: ${errors[0].error ?? errors[0].status}`);
  const burstStart = Math.min(...results.map((r) => r.startEpoch));
  // How long after the holder's answer ended each waiter's answer ended.
  const afterHolder = holder ? sorted(waiters.map((r) => r.endEpoch - holder.endEpoch)) : [];
  let warmRun = null;
  if (warm) {
    const again = await burst(url, n);
    const lat = sorted(again.filter((r) => r.status === 200).map((r) => r.ms));
    const notHit = again.filter((r) => r.xcache !== "HIT").length;
    if (notHit) bench.note(`${n} concurrent requests on a cached key (path ${p}): ${notHit} not HIT`);
    warmRun = { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
  }
  return {
    fetches: stats.count,
    errors: errors.length,
    phases,
    originTime: stats.ends.length ? stats.ends[0] - stats.starts[0] : NaN,
    originReached: stats.starts.length ? stats.starts[0] - burstStart : NaN,
    p50: percentile(all, 0.5),
    p99: percentile(all, 0.99),
    max: all.at(-1),
    // Waiters' latency beyond the origin's nominal time.
    wp50: percentile(waiterMs, 0.5) - originMs,
    wp99: percentile(waiterMs, 0.99) - originMs,
    wmax: (waiterMs.at(-1) ?? NaN) - originMs,
    ah50: percentile(afterHolder, 0.5),
    ah99: percentile(afterHolder, 0.99),
    warmP50: warmRun?.p50 ?? NaN,
    warmP99: warmRun?.p99 ?? NaN,
  };
}

/** n concurrent requests just after expiry of an s-maxage=1, swr=30 entry. */
export async function staleBurst(bench, w, n = 50, originMs = 800) {
  const p = bench.fresh("stale");
  const url = `${w.url}${p}?ms=${originMs}&cc=${encodeURIComponent(SWR)}`;
  const first = await once(url);
  if (first.xcache !== "MISS") bench.note(`stale scenario: priming request answered X-Cache ${first.xcache}`);
  await sleep(1600); // past s-maxage=1 (ages are whole seconds)
  const results = await burst(url, n);
  await sleep(originMs + 700); // let the background refresh finish
  const stats = await bench.origin.stats(p);
  const stale = sorted(results.filter((r) => r.xcache === "STALE").map((r) => r.ms));
  const hits = sorted((await burst(url, n)).filter((r) => r.xcache === "HIT").map((r) => r.ms));
  const phases = {};
  for (const r of results) phases[r.xcache ?? `status ${r.status}`] = (phases[r.xcache ?? `status ${r.status}`] ?? 0) + 1;
  const fetches = stats.count - 1;
  if (fetches !== 1) bench.note(`${n} requests just after expiry (path ${p}) caused ${fetches} refresh fetches; phases ${JSON.stringify(phases)}`);
  if (stale.length !== n) bench.note(`${n} requests just after expiry: only ${stale.length} were STALE: ${JSON.stringify(phases)}`);
  return {
    fetches,
    min: stale[0],
    max: stale.at(-1),
    p50: percentile(stale, 0.5),
    stale: stale.length,
    phases,
    hitMin: hits[0],
    hitMax: hits.at(-1),
    hits: hits.length,
  };
}

/** `bench.connections` keep-alive connections across TTL-1 s expiries for `bench.seconds` s. */
export async function steadyLoad(bench, w, cc, originMs = 800) {
  const p = bench.fresh("steady");
  const url = `${w.url}${p}?ms=${originMs}&cc=${encodeURIComponent(cc)}`;
  await once(url);
  const before = (await bench.origin.stats(p)).count;
  const result = await load(url, { seconds: bench.seconds, connections: bench.connections });
  await sleep(originMs + 500);
  const stats = await bench.origin.stats(p);
  // Group the fetches that started during the run into expiries: a fetch more than 500 ms
  // after the first fetch of the current group starts a new expiry.
  const starts = stats.starts.slice(before);
  const groups = [];
  for (const t of starts) {
    if (groups.length && t - groups.at(-1).first < 500) groups.at(-1).n++;
    else groups.push({ first: t, n: 1 });
  }
  const perExpiry = groups.length ? Math.max(...groups.map((g) => g.n)) : 0;
  if (perExpiry > 1) bench.note(`steady load (${cc}, path ${p}): ${perExpiry} origin fetches for one expiry (${JSON.stringify(groups.map((g) => g.n))})`);
  return {
    fetches: starts.length,
    expiries: groups.length,
    perExpiry,
    max: result.max,
    p50: result.p50,
    rps: result.rps,
    errors: result.errors,
    xcache: result.xcache,
  };
}
