// The cache (docs §2–§4, §6.1, §7.3): MISS/HIT, Age and Cache-Status, request
// collapsing behind the lock, stale-while-revalidate with one background refresh,
// stale-if-error, what is never stored, Vary, byte-exact bodies, HEAD, rules, the cost of a hit
// in Redis requests, compare-and-delete of the lock, and failing open when Redis misbehaves.
//
// Redis is real (redis-server + the REST gateway); the worker talks to it through
// support/redis-proxy.mjs, which counts requests and injects faults.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";

import { sleep } from "./support/harness.mjs";
import { startProxiedStack } from "./support/redis-proxy.mjs";
import { xc, cs, settle, gatewayCommand } from "./support/cache-helpers.mjs";

const sha256 = (buffer) => createHash("sha256").update(buffer).digest("hex");

const RULES = [
  { path: "/rule/ttl/*", ttl: 30 },
  { path: "/rule/off/*", cache: false },
];
// This suite is about the Redis tier (it counts Redis requests and edits Redis behind the
// worker's back): the per-isolate L1 is off here and has its own suite, two-tier.test.mjs.
const VARS = {
  CACHE_RULES: JSON.stringify(RULES),
  CACHE_MAX_BYTES: "65536",
  ORIGIN_TIMEOUT_MS: "5000",
  CACHE_L1_BYTES: "0",
};

let stack;
let proxy;
/** Sends one command straight to the gateway. */
const redis = (command) => gatewayCommand(stack, command);

let proxied;
before(async () => {
  proxied = await startProxiedStack(VARS);
  ({ stack, proxy } = proxied);
});
after(async () => {
  await proxied?.stop();
});
beforeEach(() => {
  stack.origin.reset();
  proxy.fault(null);
});

/** A route answering `body` with `headers` (status 200 unless given). */
function serve(path, headers, body = `body of ${path}`, status = 200) {
  stack.origin.route(path, ({ res }) => {
    res.writeHead(status, { "content-type": "text/plain", ...headers });
    res.end(body);
  });
}

describe("MISS then HIT", () => {
  it("stores a cacheable answer and serves it without the origin, with Age and Cache-Status", async () => {
    serve("/c/basic", { "cache-control": "max-age=60", "x-origin": "yes" }, "hello cache");
    const first = await stack.request("/c/basic");
    assert.equal(first.status, 200);
    assert.equal(xc(first), "MISS");
    assert.match(cs(first), /^edge-cache; fwd=uri-miss(; ttl=\d+)?; stored$/);
    assert.equal(first.text(), "hello cache");
    await settle();

    const second = await stack.request("/c/basic");
    assert.equal(second.status, 200);
    assert.equal(xc(second), "HIT");
    assert.equal(second.text(), "hello cache");
    assert.equal(second.headers["x-origin"], "yes", "origin headers are stored");
    assert.equal(second.headers["content-type"], "text/plain");
    const ttl = Number(cs(second).match(/^edge-cache; hit; ttl=(\d+)$/)?.[1]);
    assert.ok(ttl > 50 && ttl <= 60, `Cache-Status ${cs(second)}`);
    assert.match(second.headers.age ?? "", /^\d+$/, "a cached response carries Age");
    assert.ok(Number(second.headers.age) <= 10);
    assert.equal(stack.origin.count("/c/basic"), 1);
  });

  it("Age includes the origin's Age, and ttl counts it off", async () => {
    serve("/c/aged", { "cache-control": "max-age=60", age: "15" });
    await stack.request("/c/aged");
    await settle();
    const hit = await stack.request("/c/aged");
    assert.equal(xc(hit), "HIT");
    assert.ok(Number(hit.headers.age) >= 15, `Age ${hit.headers.age}`);
    const ttl = Number(cs(hit).match(/ttl=(-?\d+)/)?.[1]);
    assert.ok(ttl <= 45 && ttl > 35, `Cache-Status ${cs(hit)}`);
    assert.equal(stack.origin.count("/c/aged"), 1);
  });

  it("s-maxage wins over max-age", async () => {
    serve("/c/smaxage", { "cache-control": "max-age=5, s-maxage=100" });
    await stack.request("/c/smaxage");
    await settle();
    const hit = await stack.request("/c/smaxage");
    assert.equal(xc(hit), "HIT");
    const ttl = Number(cs(hit).match(/ttl=(-?\d+)/)?.[1]);
    assert.ok(ttl > 90, `Cache-Status ${cs(hit)}`);
  });

  it("the query is part of the key, in any parameter order", async () => {
    stack.origin.route("/c/query", ({ req, res }) => {
      res.writeHead(200, { "cache-control": "max-age=60" });
      res.end(req.url);
    });
    const a = await stack.request("/c/query?a=1&b=2");
    await settle();
    const b = await stack.request("/c/query?b=2&a=1");
    assert.equal(xc(b), "HIT", "sorted parameters: the same key");
    assert.equal(b.text(), a.text());
    const c = await stack.request("/c/query?a=1&b=3");
    assert.equal(xc(c), "MISS");
    assert.equal(c.text(), "/c/query?a=1&b=3");
    assert.equal(stack.origin.count("/c/query"), 2);
  });

  it("client Cache-Control and Pragma cannot force an origin fetch", async () => {
    serve("/c/client-nocache", { "cache-control": "max-age=60" });
    await stack.request("/c/client-nocache");
    await settle();
    const res = await stack.request("/c/client-nocache", {
      headers: { "cache-control": "no-cache, no-store, max-age=0", pragma: "no-cache" },
    });
    assert.equal(xc(res), "HIT");
    assert.equal(stack.origin.count("/c/client-nocache"), 1);
  });
});

describe("stampede", () => {
  it("100 concurrent requests for a cold key with an 800 ms origin: one origin fetch, 100 full bodies", async () => {
    const body = randomBytes(20_000).toString("base64"); // ~27 KB, compressed when stored
    let answeredAt = 0;
    stack.origin.route("/c/stampede", async ({ res }) => {
      await sleep(800);
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=60" });
      res.end(body);
      answeredAt = performance.now();
    });
    const done = [];
    const results = await Promise.all(
      Array.from({ length: 100 }, () =>
        stack.request("/c/stampede", { timeoutMs: 20_000 }).then((res) => {
          done.push(performance.now());
          return res;
        }),
      ),
    );
    // For information: how long after the origin answered did the requests finish?
    const beyond = done.map((t) => t - answeredAt).sort((a, b) => a - b);
    const pct = (p) => beyond[Math.min(beyond.length - 1, Math.floor((p / 100) * beyond.length))].toFixed(0);
    console.log(
      `stampede: 100 concurrent, 800 ms origin: ${stack.origin.count("/c/stampede")} origin fetch, ` +
        `${results.filter((r) => cs(r).includes("collapsed")).length} collapsed, ${results.filter((r) => r.status !== 200).length} non-200; latency beyond the origin's answer p50 +${pct(50)} ms, p99 +${pct(99)} ms, max +${pct(100)} ms`,
    );
    assert.equal(stack.origin.count("/c/stampede"), 1, "exactly one origin fetch");
    const want = sha256(Buffer.from(body));
    const bad = results.filter((r) => r.status !== 200);
    assert.equal(
      bad.length,
      0,
      `${bad.length} of 100 answered non-200: ${JSON.stringify(
        [...new Set(bad.map((r) => `${r.status} ${xc(r)} ${cs(r)} ${r.text().slice(0, 120)}`))],
      )}; worker log: ${stack.worker.logs().slice(-5).join(" | ")}`,
    );
    for (const res of results) {
      assert.equal(res.status, 200);
      assert.equal(res.body.length, Buffer.byteLength(body), "a waiter got a partial or empty body");
      assert.equal(sha256(res.body), want);
    }
    const kinds = results.map((r) => `${xc(r)} ${cs(r).includes("collapsed") ? "collapsed" : ""}`.trim());
    assert.equal(kinds.filter((k) => k === "MISS").length, 1, `X-Cache values: ${[...new Set(kinds)]}`);
    assert.ok(results.every((r) => xc(r) === "MISS" || xc(r) === "HIT"), `X-Cache values: ${[...new Set(kinds)]}`);

  });
  it("a request whose lookup (absent) is answered after the holder stored does not fetch again", async () => {
    // Lookups' answers are held back 300 ms on the way back from Redis (as for a far-away
    // isolate). B's lookup reads "absent" while A holds the lock; by the time B sees that
    // answer, A has stored and released. B must find A's result, not take a fresh lock and
    // ask the origin a second time.
    stack.origin.route("/c/miss-late", async ({ res }) => {
      await sleep(100);
      res.writeHead(200, { "cache-control": "max-age=60" });
      res.end(`answer ${stack.origin.count("/c/miss-late")}`);
    });
    proxy.fault({ delayAfterMs: 300, match: (body) => body.includes('"MGET"') && !body.includes(":l:") });
    let ra;
    let rb;
    try {
      const a = stack.request("/c/miss-late");
      await sleep(200);
      const b = stack.request("/c/miss-late");
      [ra, rb] = await Promise.all([a, b]);
    } finally {
      proxy.fault(null);
    }
    assert.equal(ra.text(), "answer 1");
    assert.equal(stack.origin.count("/c/miss-late"), 1, `B fetched again: ${xc(rb)} ${cs(rb)}`);
    assert.equal(rb.text(), "answer 1");
  });
});

describe("stale-while-revalidate", () => {
  it("20 concurrent requests for a stale key are all served STALE at once, with one background refresh", async () => {
    let version = 0;
    let refreshAnswered = false;
    stack.origin.route("/c/swr", async ({ res }) => {
      version += 1;
      const mine = version;
      if (mine > 1) await sleep(1500); // a slow refresh: stale answers must not wait for it
      res.writeHead(200, { "cache-control": "max-age=1, stale-while-revalidate=30" });
      res.end(`v${mine}`);
      if (mine > 1) refreshAnswered = true;
    });
    const first = await stack.request("/c/swr");
    assert.equal(first.text(), "v1");
    await sleep(1600); // past max-age=1

    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        stack.request("/c/swr").then((res) => ({ res, refreshAnsweredBefore: refreshAnswered })),
      ),
    );
    for (const { res, refreshAnsweredBefore } of results) {
      assert.equal(res.status, 200);
      assert.equal(xc(res), "STALE", cs(res));
      assert.match(cs(res), /^edge-cache; hit; ttl=-\d+$/);
      assert.equal(res.text(), "v1");
      assert.ok(res.headers.age !== undefined, "a stale response carries Age");
      assert.equal(refreshAnsweredBefore, false, "a STALE answer waited for the background refresh");
    }
    await sleep(2000);
    assert.equal(stack.origin.count("/c/swr"), 2, "exactly one background refresh");
    const after = await stack.request("/c/swr");
    assert.equal(xc(after), "HIT");
    assert.equal(after.text(), "v2");
  });

  it("a stale request whose lookup answer arrives after another's refresh finished starts no second refresh", async () => {
    // Lookups' answers are held back 300 ms on the way
    // back from Redis (the read happens at once). A's refresh completes while B's lookup answer
    // (read before the refresh stored) is still on its way; B must not refetch.
    let version = 0;
    stack.origin.route("/c/swr-late", ({ res }) => {
      version += 1;
      res.writeHead(200, { "cache-control": "max-age=1, stale-while-revalidate=30" });
      res.end(`v${version}`);
    });
    await stack.request("/c/swr-late");
    await sleep(1_300);
    proxy.fault({ delayAfterMs: 300, match: (body) => body.includes('"MGET"') && !body.includes(":l:") });
    try {
      const a = stack.request("/c/swr-late");
      await sleep(100);
      const b = stack.request("/c/swr-late");
      const [ra, rb] = await Promise.all([a, b]);
      assert.equal(xc(ra), "STALE");
      assert.equal(xc(rb), "STALE");
      assert.equal(rb.text(), "v1");
      await sleep(400);
    } finally {
      proxy.fault(null);
    }
    assert.equal(stack.origin.count("/c/swr-late"), 2, "one refresh for one expiry");
  });

  it("a STALE answer costs one Redis request: the refresh's lock attempt goes out after the answer (issue 11.4)", async () => {
    let version = 0;
    stack.origin.route("/c/swr-one", ({ res }) => {
      version += 1;
      res.writeHead(200, { "cache-control": "max-age=1, stale-while-revalidate=30" });
      res.end(`v${version}`);
    });
    await stack.request("/c/swr-one");
    await sleep(1_300);
    await settle();
    proxy.reset();
    // The lock attempt (SET NX) is answered 800 ms late (within REDIS_TIMEOUT_MS): a STALE
    // answer that waited for it would show it. Which requests Redis had received when the
    // answer arrived says the order.
    proxy.fault({ delayMs: 800, match: (body) => body.includes('"NX"') });
    let seenAtAnswer;
    try {
      const started = Date.now();
      const res = await stack.request("/c/swr-one");
      seenAtAnswer = proxy.requests().filter((r) => !isStatsFlush(r));
      const took = Date.now() - started;
      assert.equal(xc(res), "STALE");
      assert.equal(res.text(), "v1");
      assert.ok(took < 600, `the STALE answer took ${took} ms: it waited for the lock`);
      await sleep(1_500);
    } finally {
      proxy.fault(null);
    }
    const bodies = seenAtAnswer.map((r) => r.body.slice(0, 120));
    assert.equal(seenAtAnswer.length, 1, `Redis requests before the answer: ${JSON.stringify(bodies)}`);
    assert.ok(!seenAtAnswer[0].body.includes('"NX"'), "the one request before the answer is the lookup");
    assert.ok(proxy.requests().some((r) => r.body.includes('"NX"')), "the refresh tried the lock afterwards");
    await settle();
    assert.equal(stack.origin.count("/c/swr-one"), 2, "and refreshed the copy");
  });

  it("past the swr window a stale entry is refetched behind the lock (MISS)", async () => {
    let version = 0;
    stack.origin.route("/c/swr-over", ({ res }) => {
      version += 1;
      res.writeHead(200, { "cache-control": "max-age=1, stale-while-revalidate=1" });
      res.end(`v${version}`);
    });
    await stack.request("/c/swr-over");
    await sleep(2600);
    const res = await stack.request("/c/swr-over");
    assert.notEqual(xc(res), "STALE");
    assert.equal(res.text(), "v2");
  });
});

describe("stale-if-error", () => {
  for (const [name, failure] of [
    ["a 503", ({ res }) => { res.writeHead(503); res.end("down"); }],
    ["a dropped connection", ({ req }) => { req.socket.destroy(); }],
  ]) {
    it(`serves the stale copy when the origin answers ${name}`, async () => {
      const path = `/c/sie-${name.replace(/\W+/g, "-")}`;
      serve(path, { "cache-control": "max-age=1, stale-if-error=60" }, "good copy");
      assert.equal((await stack.request(path)).text(), "good copy");
      await sleep(1600);
      stack.origin.route(path, failure);
      const res = await stack.request(path);
      assert.equal(res.status, 200);
      assert.equal(xc(res), "STALE");
      assert.match(cs(res), /fwd=stale/);
      assert.match(cs(res), /detail=origin-error/);
      assert.equal(res.text(), "good copy");
      assert.equal(stack.origin.count(path), 2);
    });
  }

  it("without a stale-if-error window an origin 5xx reaches the client", async () => {
    serve("/c/no-sie", { "cache-control": "max-age=1" }, "good copy");
    await stack.request("/c/no-sie");
    await sleep(1600);
    serve("/c/no-sie", {}, "down", 503);
    const res = await stack.request("/c/no-sie");
    assert.equal(res.status, 503);
    assert.equal(res.text(), "down");
  });
});

describe("never stored", () => {
  const cases = [
    ["no-store", { "cache-control": "no-store, max-age=60" }, 200, "no-store"],
    ["private", { "cache-control": "private, max-age=60" }, 200, "private"],
    ["no-cache", { "cache-control": "no-cache, max-age=60" }, 200, "no-cache"],
    ["set-cookie", { "cache-control": "max-age=60", "set-cookie": "a=b; Path=/" }, 200, "set-cookie"],
    ["vary-star", { "cache-control": "max-age=60", vary: "*" }, 200, "vary-star"],
    // A 403 is stored only with the origin's own freshness (docs §2.2); without it, never.
    ["status", {}, 403, "status"],
    ["no-freshness", {}, 200, "no-freshness"],
  ];
  for (const [name, headers, status, reason] of cases) {
    it(`${name}: both requests reach the origin, detail=${reason}`, async () => {
      const path = `/c/never/${name}`;
      serve(path, headers, `answer ${name}`, status);
      const first = await stack.request(path);
      assert.equal(first.status, status);
      assert.equal(first.text(), `answer ${name}`);
      assert.equal(xc(first), "MISS");
      assert.match(cs(first), new RegExp(`^edge-cache; fwd=uri-miss(; fwd-status=\\d+)?; detail=${reason}$`));
      await settle();
      const second = await stack.request(path);
      assert.equal(second.status, status);
      assert.notEqual(xc(second), "HIT");
      assert.notEqual(xc(second), "STALE");
      // Uncacheable: the next 60 s of requests skip the lock (hit-for-pass).
      assert.match(cs(second), /detail=hit-for-pass$/);
      assert.equal(stack.origin.count(path), 2);
      if (name === "set-cookie") assert.deepEqual(second.headers["set-cookie"], ["a=b; Path=/"]);
    });
  }

  it("a request with Authorization takes and stores only what the origin marked shareable", async () => {
    // RFC 9111 §3.5: public, s-maxage or must-revalidate make it shareable, both ways.
    serve("/c/auth-public", { "cache-control": "public, max-age=60" }, "shared");
    const filled = await stack.request("/c/auth-public", { headers: { authorization: "Bearer x" } });
    assert.equal(xc(filled), "MISS");
    await settle();
    assert.equal(xc(await stack.request("/c/auth-public")), "HIT");
    assert.equal(xc(await stack.request("/c/auth-public", { headers: { authorization: "Bearer y" } })), "HIT");
    assert.equal(stack.origin.count("/c/auth-public"), 1);

    serve("/c/auth", { "cache-control": "max-age=60" }, "secret stuff");
    const first = await stack.request("/c/auth", { headers: { authorization: "Bearer x" } });
    assert.equal(xc(first), "MISS");
    assert.match(cs(first), /detail=authorization$/);
    assert.equal(stack.origin.last("/c/auth").headers.authorization, "Bearer x");
    await settle();
    // Not stored by the authorized request, and no hit-for-pass: an anonymous request fills.
    const anonymous = await stack.request("/c/auth");
    assert.equal(xc(anonymous), "MISS");
    assert.match(cs(anonymous), /^edge-cache; fwd=uri-miss(; ttl=\d+)?; stored$/);
    await settle();
    assert.equal(xc(await stack.request("/c/auth")), "HIT");
    // The anonymous entry is not marked shareable: an authorized request goes to the origin.
    const again = await stack.request("/c/auth", { headers: { authorization: "Bearer x" } });
    assert.equal(xc(again), "BYPASS");
    assert.equal(cs(again), "edge-cache; fwd=bypass; detail=authorization");
    assert.equal(stack.origin.count("/c/auth"), 3);
  });

  it("a Range request on a cold key reaches the origin with its Range and fills nothing", async () => {
    serve("/c/range", { "cache-control": "max-age=60" }, "0123456789");
    const res = await stack.request("/c/range", { headers: { range: "bytes=0-3" } });
    assert.equal(xc(res), "BYPASS");
    assert.equal(cs(res), "edge-cache; fwd=bypass; detail=range");
    assert.equal(stack.origin.last("/c/range").headers.range, "bytes=0-3");
    await settle();
    const get = await stack.request("/c/range");
    assert.equal(xc(get), "MISS", "the Range request stored something");
  });

  it("other methods are not cached: BYPASS detail=method", async () => {
    serve("/c/post", { "cache-control": "max-age=60" });
    for (const method of ["POST", "PUT", "OPTIONS"]) {
      const res = await stack.request("/c/post", { method, body: method === "OPTIONS" ? undefined : "x" });
      assert.equal(xc(res), "BYPASS", method);
      assert.equal(cs(res), "edge-cache; fwd=bypass; detail=method");
    }
    assert.equal(stack.origin.count("/c/post"), 3);
  });

  for (const chunked of [false, true]) {
    it(`a body over CACHE_MAX_BYTES (${chunked ? "chunked" : "with Content-Length"}) passes through whole and unstored`, async () => {
      const path = `/c/oversize-${chunked ? "chunked" : "length"}`;
      const big = randomBytes(200_000);
      stack.origin.route(path, ({ res }) => {
        const headers = { "content-type": "application/octet-stream", "cache-control": "max-age=60" };
        if (!chunked) headers["content-length"] = String(big.length);
        res.writeHead(200, headers);
        if (chunked) {
          for (let i = 0; i < big.length; i += 16_384) res.write(big.subarray(i, i + 16_384));
          res.end();
        } else {
          res.end(big);
        }
      });
      for (let i = 0; i < 2; i++) {
        const res = await stack.request(path);
        assert.equal(res.status, 200);
        assert.equal(res.body.length, big.length);
        assert.equal(sha256(res.body), sha256(big));
        assert.notEqual(xc(res), "HIT");
        if (i === 0) assert.match(cs(res), /detail=too-large/);
        await settle();
      }
      assert.equal(stack.origin.count(path), 2);
    });
  }
});

describe("variants, bodies, HEAD", () => {
  it("Vary on a request header keeps one variant per value", async () => {
    stack.origin.route("/c/vary", ({ req, res }) => {
      res.writeHead(200, { "cache-control": "max-age=60", vary: "Accept-Language" });
      res.end(`lang=${req.headers["accept-language"]}`);
    });
    const en1 = await stack.request("/c/vary", { headers: { "accept-language": "en" } });
    assert.equal(en1.text(), "lang=en");
    await settle();
    const fr1 = await stack.request("/c/vary", { headers: { "accept-language": "fr" } });
    assert.equal(fr1.text(), "lang=fr");
    assert.equal(xc(fr1), "MISS");
    await settle();
    const en2 = await stack.request("/c/vary", { headers: { "accept-language": "en" } });
    const fr2 = await stack.request("/c/vary", { headers: { "accept-language": "fr" } });
    assert.equal(xc(en2), "HIT");
    assert.equal(en2.text(), "lang=en");
    assert.equal(xc(fr2), "HIT");
    assert.equal(fr2.text(), "lang=fr");
    assert.equal(stack.origin.count("/c/vary"), 2);
  });

  it("a binary body is byte-exact through the cache, on MISS and on HIT", async () => {
    const bytes = randomBytes(40_000);
    serve("/c/binary", { "content-type": "application/octet-stream", "cache-control": "max-age=60" }, bytes);
    const miss = await stack.request("/c/binary");
    assert.equal(xc(miss), "MISS");
    assert.equal(sha256(miss.body), sha256(bytes));
    await settle();
    const hit = await stack.request("/c/binary");
    assert.equal(xc(hit), "HIT");
    assert.equal(hit.body.length, bytes.length);
    assert.equal(sha256(hit.body), sha256(bytes));
    assert.equal(hit.headers["content-type"], "application/octet-stream");
  });

  it("a compressible text body over 1 KiB round-trips exactly", async () => {
    const text = "héllo wörld, ".repeat(2_000) + "\u{1F600}";
    serve("/c/text", { "content-type": "text/plain; charset=utf-8", "cache-control": "max-age=60" }, text);
    await stack.request("/c/text");
    await settle();
    const hit = await stack.request("/c/text");
    assert.equal(xc(hit), "HIT");
    assert.equal(hit.text(), text);
  });

  it("HEAD is answered from the GET entry", async () => {
    serve("/c/head", { "cache-control": "max-age=60", "x-kind": "entity" }, "the entity body");
    await stack.request("/c/head");
    await settle();
    const head = await stack.request("/c/head", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(xc(head), "HIT");
    assert.equal(head.body.length, 0);
    assert.equal(head.headers["x-kind"], "entity");
    assert.equal(stack.origin.count("/c/head"), 1);
  });

  it("HEAD on a cold key goes to the origin as HEAD and stores nothing", async () => {
    serve("/c/head-cold", { "cache-control": "max-age=60" }, "entity");
    const head = await stack.request("/c/head-cold", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(stack.origin.last("/c/head-cold").method, "HEAD");
    await settle();
    const get = await stack.request("/c/head-cold");
    assert.equal(get.text(), "entity");
    assert.equal(xc(get), "MISS");
  });
});

describe("CACHE_RULES", () => {
  it("a rule's ttl caches a response without Cache-Control", async () => {
    serve("/rule/ttl/a", {}, "ruled");
    const first = await stack.request("/rule/ttl/a");
    assert.equal(xc(first), "MISS");
    assert.match(cs(first), /stored/);
    await settle();
    const hit = await stack.request("/rule/ttl/a");
    assert.equal(xc(hit), "HIT");
    const ttl = Number(cs(hit).match(/ttl=(-?\d+)/)?.[1]);
    assert.ok(ttl > 20 && ttl <= 30, cs(hit));
    assert.equal(stack.origin.count("/rule/ttl/a"), 1);
  });

  it("a rule with cache:false bypasses: detail=rule-no-cache", async () => {
    serve("/rule/off/a", { "cache-control": "max-age=60" });
    for (let i = 0; i < 2; i++) {
      const res = await stack.request("/rule/off/a");
      assert.equal(xc(res), "BYPASS");
      assert.equal(cs(res), "edge-cache; fwd=bypass; detail=rule-no-cache");
      await settle();
    }
    assert.equal(stack.origin.count("/rule/off/a"), 2);
  });
});

/** Requests whose commands are all stats flushes (INCRBY …:stats:…): background bookkeeping. */
function isStatsFlush(request) {
  try {
    const commands = request.path === "/pipeline" ? JSON.parse(request.body) : [JSON.parse(request.body)];
    return commands.every((c) => String(c[0]).toUpperCase() === "INCRBY" && String(c[1]).includes(":stats:"));
  } catch {
    return false;
  }
}

describe("Redis requests", () => {
  it("a cache hit costs exactly one Redis HTTP request", async () => {
    serve("/c/one-rt", { "cache-control": "max-age=60" });
    await stack.request("/c/one-rt");
    await sleep(400);
    await stack.request("/c/one-rt"); // the isolate now knows the version and Vary hints
    await settle();
    proxy.reset();
    const N = 10;
    for (let i = 0; i < N; i++) {
      const hit = await stack.request("/c/one-rt");
      assert.equal(xc(hit), "HIT");
    }
    await settle();
    const all = proxy.requests();
    const lookups = all.filter((r) => !isStatsFlush(r));
    console.log(
      `redis requests for ${N} hits: ${lookups.length} (+ ${all.length - lookups.length} background stats flushes); ` +
        `paths ${JSON.stringify([...new Set(all.map((r) => r.path))])}`,
    );
    assert.equal(lookups.length, N, `requests: ${JSON.stringify(lookups.map((r) => r.body.slice(0, 200)))}`);
    assert.ok(lookups.every((r) => r.path === "/pipeline" || r.path === "/"));
  });

  it("a slow lock holder releases by compare-and-delete: it never deletes someone else's lock", async () => {
    // The holder's lock is replaced (as if its TTL expired and another request took it) while
    // the holder is still fetching; when it finishes, the other lock must still be there.
    let release;
    const gate = new Promise((r) => (release = r));
    stack.origin.route("/c/cad", async ({ res }) => {
      await gate;
      res.writeHead(200, { "cache-control": "max-age=60" });
      res.end("from the slow holder");
    });
    proxy.reset();
    const pending = stack.request("/c/cad");
    let take;
    for (let i = 0; i < 200 && !take; i++) {
      await sleep(10);
      take = proxy.commands().find((c) => String(c[0]).toUpperCase() === "SET" && c.map(String).map((s) => s.toUpperCase()).includes("NX"));
    }
    assert.ok(take, "the holder took a lock with SET … NX");
    const lockKey = take[1];
    const holderToken = take[2];
    assert.ok((await redis(["GET", lockKey])) === holderToken, "the lock holds the holder's token");
    await redis(["SET", lockKey, "someone-else", "PX", "30000"]);
    release();
    const res = await pending;
    assert.equal(res.text(), "from the slow holder");
    await settle();
    const cad = proxy.commands().find((c) => String(c[0]).toUpperCase() === "EVAL" && c.includes(lockKey));
    assert.ok(cad, "the holder released its lock with a compare-and-delete script");
    assert.equal(await redis(["GET", lockKey]), "someone-else", "the holder deleted another holder's lock");
    await redis(["DEL", lockKey]);
    // And in the normal case the holder's own lock is gone after it answered.
    serve("/c/cad2", { "cache-control": "max-age=60" });
    proxy.reset();
    await stack.request("/c/cad2");
    await settle();
    const take2 = proxy.commands().find((c) => String(c[0]).toUpperCase() === "SET" && c.map(String).map((s) => s.toUpperCase()).includes("NX"));
    assert.ok(take2);
    assert.equal(await redis(["GET", take2[1]]), null, "the holder released its own lock");
  });

  it("a lock whose holder died (no result) is taken over by one waiter when it expires", async () => {
    // Learn the URL's keys from a first fill, then make it look as if a holder took the lock
    // and crashed: entry gone, lock present for 1.5 s more.
    stack.origin.route("/c/dead-holder", async ({ res }) => {
      await sleep(200);
      res.writeHead(200, { "cache-control": "max-age=60" });
      res.end(`answer ${stack.origin.count("/c/dead-holder")}`);
    });
    proxy.reset();
    await stack.request("/c/dead-holder");
    await settle();
    const cmds = proxy.commands();
    const lockKey = cmds.find((c) => String(c[0]).toUpperCase() === "SET" && String(c[1]).includes(":l:"))?.[1];
    assert.ok(lockKey, "the lock key was seen");
    await redis(["DEL", lockKey.replace(":l:", ":f:"), lockKey.replace(":l:", ":s:")]);
    await redis(["SET", lockKey, "crashed-holder", "PX", "1500"]);
    const results = await Promise.all(Array.from({ length: 5 }, () => stack.request("/c/dead-holder")));
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.equal(r.text(), "answer 2");
    }
    assert.equal(stack.origin.count("/c/dead-holder"), 2, "one waiter (only) took over the expired lock");
    assert.deepEqual(results.map(xc).sort(), ["HIT", "HIT", "HIT", "HIT", "MISS"]);
  });

  it("when the result is uncacheable, waiters go to the origin at once (hit-for-pass)", async () => {
    stack.origin.route("/c/uncacheable-stampede", async ({ res }) => {
      await sleep(400);
      res.writeHead(200, { "cache-control": "no-store" });
      res.end("personal");
    });
    const results = await Promise.all(Array.from({ length: 10 }, () => stack.request("/c/uncacheable-stampede")));
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.equal(r.text(), "personal");
      assert.equal(xc(r), "MISS");
    }
    const details = results.map((r) => cs(r).match(/detail=([a-z-]+)/)?.[1]).sort();
    assert.equal(details.filter((d) => d === "no-store").length, 1, String(details));
    assert.equal(details.filter((d) => d === "hit-for-pass").length, 9, String(details));
    assert.equal(stack.origin.count("/c/uncacheable-stampede"), 10, "every waiter is answered by the origin");
  });

  it("an entry that does not decode is a miss and is replaced", async () => {
    serve("/c/corrupt", { "cache-control": "max-age=60" }, "good");
    proxy.reset();
    await stack.request("/c/corrupt");
    await settle();
    const storeSet = proxy
      .commands()
      .find((c) => String(c[0]).toUpperCase() === "SET" && String(c[1]).includes(":s:"));
    assert.ok(storeSet, "the entry was stored with SET …:s:…");
    await redis(["SET", storeSet[1], "this is not an entry"]);
    const res = await stack.request("/c/corrupt");
    assert.equal(res.status, 200);
    assert.equal(res.text(), "good");
    assert.equal(xc(res), "MISS");
    await settle();
    const again = await stack.request("/c/corrupt");
    assert.equal(xc(again), "HIT");
    assert.equal(again.text(), "good");
  });
});

describe("CACHE_LOCK_WAIT_MS", () => {
  before(() => stack.restartWorker({ ...VARS, CACHE_LOCK_WAIT_MS: "700" }));
  after(() => stack.restartWorker(VARS));

  it("a waiter whose wait runs out asks the origin itself, without storing (detail=lock-timeout)", async () => {
    serve("/c/lock-timeout", { "cache-control": "max-age=60" }, "from origin");
    proxy.reset();
    await stack.request("/c/lock-timeout");
    await settle();
    const lockKey = proxy.commands().find((c) => String(c[0]).toUpperCase() === "SET" && String(c[1]).includes(":l:"))?.[1];
    assert.ok(lockKey);
    await redis(["DEL", lockKey.replace(":l:", ":f:"), lockKey.replace(":l:", ":s:")]);
    await redis(["SET", lockKey, "a-very-slow-holder", "PX", "20000"]);
    try {
      const res = await stack.request("/c/lock-timeout");
      assert.equal(res.status, 200);
      assert.equal(res.text(), "from origin");
      assert.equal(xc(res), "MISS");
      assert.match(cs(res), /detail=lock-timeout/);
      assert.equal(stack.origin.count("/c/lock-timeout"), 2);
      assert.equal(await redis(["GET", lockKey]), "a-very-slow-holder", "the waiter touched another holder's lock");
      await settle();
      assert.equal(await redis(["EXISTS", lockKey.replace(":l:", ":s:")]), 0, "a timed-out waiter stored its answer");
    } finally {
      await redis(["DEL", lockKey]);
    }
  });
});

describe("Redis misbehaving: fail open", () => {
  // A short Redis timeout, and a fresh isolate per case (the circuit breaker is per isolate).
  const restart = () => stack.restartWorker({ ...VARS, REDIS_TIMEOUT_MS: "300" });
  after(async () => {
    proxy.fault(null);
    await stack.restartWorker(VARS);
  });

  for (const [name, mode] of [
    ["slow past REDIS_TIMEOUT_MS", { delayMs: 1500 }],
    ["answering garbage", { garbage: true }],
    ["answering 500", { status: 500 }],
    ["closing the connection", { refuse: true }],
  ]) {
    it(`Redis ${name}: MISS detail=redis-unavailable (degraded mode), the origin's 200, no 5xx`, async () => {
      await restart();
      const path = `/c/fault-${name.replace(/\W+/g, "-")}`;
      serve(path, { "cache-control": "max-age=60" }, "from origin");
      proxy.fault(mode);
      for (let i = 0; i < 2; i++) {
        const res = await stack.request(path);
        assert.equal(res.status, 200);
        assert.equal(res.text(), "from origin");
        // The isolate's one fetch of the key (docs §4.17); with the L1 off nothing keeps it.
        assert.equal(xc(res), "MISS");
        assert.match(cs(res), /^edge-cache; fwd=uri-miss; .*detail=redis-unavailable$/);
      }
      assert.equal(stack.origin.count(path), 2);
      proxy.fault(null);
    });
  }

  it("the circuit breaker spares Redis after a failure (no request per client request)", async () => {
    await restart();
    serve("/c/breaker", { "cache-control": "max-age=60" });
    proxy.fault({ status: 500 });
    proxy.reset();
    await stack.request("/c/breaker");
    const afterFirst = proxy.total();
    for (let i = 0; i < 5; i++) {
      const res = await stack.request("/c/breaker");
      assert.match(cs(res), /detail=redis-unavailable/);
    }
    console.log(`breaker: ${afterFirst} redis request(s) for the first failing request, ${proxy.total() - afterFirst} for the next 5`);
    assert.ok(proxy.total() - afterFirst < 5, "every request still went to the failing Redis");
    proxy.fault(null);
  });

  it("Redis stopped: detail=redis-unavailable with the origin's 200; works again once Redis is back", async () => {
    await restart();
    serve("/c/redis-down", { "cache-control": "max-age=60" }, "from origin");
    await stack.redis.stop();
    try {
      const res = await stack.request("/c/redis-down");
      assert.equal(res.status, 200);
      assert.equal(res.text(), "from origin");
      assert.equal(xc(res), "MISS");
      assert.match(cs(res), /detail=redis-unavailable/);
      const post = await stack.request("/c/redis-down", { method: "POST", body: "x" });
      assert.equal(post.status, 200, "a write is not failed by a dead Redis");
    } finally {
      await stack.redis.start();
    }
    await restart();
    let res;
    for (let i = 0; i < 20; i++) {
      res = await stack.request("/c/redis-down");
      if (!/redis-unavailable/.test(cs(res))) break;
      await sleep(250);
    }
    assert.equal(xc(res), "MISS", "the gateway and worker recover once Redis is back");
  });
});
