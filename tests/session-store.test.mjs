// Sessions on a store of their own (issue 14 item 4, docs §5.10): the hazard and the cure with
// two real redis-servers, each behind its own gateway. The cache's is small and runs
// `allkeys-lru`, as a cache Redis under memory pressure does: filling it with cache entries
// evicts the sessions that share it (users logged out). With SESSION_REDIS_REST_URL on a second
// Redis (`noeviction`), the same fill leaves every session alive. Also: a hit with a session
// costs one request per store, sent together, and /__edge/health reports both stores.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

import { startStack } from "./support/harness.mjs";
import { startRedisProxy } from "./support/redis-proxy.mjs";
import { redisCommand, startGateway, startRedis } from "./support/services.mjs";
import { settle, xc } from "./support/cache-helpers.mjs";

const SECRET = "store-session-secret-0123456789-abcdefghij";
const NAME = "__Host-session";
const USERS = 20;
const ENTRIES = 150; // × ~64 KB of incompressible body: several times the cache Redis's 3 MB

let stack;
let sessionRedis;
let sessionGateway;
let fullGateway;
let fullRedis;
const cleanups = [];

before(async () => {
  stack = await startStack({ redis: false });
  cleanups.push(() => stack.stop());
  const cacheRedis = await startRedis({ args: ["--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru"] });
  cleanups.push(() => cacheRedis.stop());
  const cacheGateway = await startGateway({ redisUrl: cacheRedis.url });
  cleanups.push(() => cacheGateway.stop());
  stack.baseVars.UPSTASH_REDIS_REST_URL = cacheGateway.url;
  stack.baseVars.UPSTASH_REDIS_REST_TOKEN = cacheGateway.token;
  stack.baseVars.SESSION_SECRET = SECRET;
  sessionRedis = await startRedis({ args: ["--maxmemory-policy", "noeviction"] });
  cleanups.push(() => sessionRedis.stop());
  sessionGateway = await startGateway({ redisUrl: sessionRedis.url });
  cleanups.push(() => sessionGateway.stop());
  // The one-store alternative: small, and `noeviction`.
  fullRedis = await startRedis({ args: ["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"] });
  cleanups.push(() => fullRedis.stop());
  fullGateway = await startGateway({ redisUrl: fullRedis.url });
  cleanups.push(() => fullGateway.stop());

  stack.origin.route("/login", ({ req, res }) => {
    const user = new URL(req.url, "http://o").searchParams.get("user");
    res.writeHead(200, { "edge-session-set": JSON.stringify({ user }) });
    res.end("in");
  });
  stack.origin.route("/whoami", ({ req, res }) => {
    res.writeHead(200, { "cache-control": "no-store" });
    res.end(req.headers["edge-session-status"] ?? "none");
  });
  // Cache entries that do not compress: the fill that puts the cache Redis under pressure.
  for (let i = 0; i < ENTRIES; i++) {
    const body = randomBytes(48 * 1024).toString("base64");
    stack.origin.route(`/blob/${i}`, ({ res }) => {
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=3600" });
      res.end(body);
    });
  }
  // One page shared by everyone, for the hit with a session.
  stack.origin.route("/shared", ({ res }) => {
    res.writeHead(200, { "cache-control": "public, max-age=3600" });
    res.end("shared");
  });
});
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function logInEveryone() {
  const cookies = [];
  for (let i = 0; i < USERS; i++) {
    const res = await stack.request(`/login?user=u${i}`);
    const line = (res.headers["set-cookie"] ?? []).find((c) => c.startsWith(`${NAME}=`));
    assert.ok(line, "logged in");
    cookies.push(line.split(";")[0]);
  }
  return cookies;
}

async function fillTheCache() {
  for (let i = 0; i < ENTRIES; i++) {
    const res = await stack.request(`/blob/${i}`);
    assert.equal(res.status, 200);
  }
  await settle();
}

async function stillLoggedIn(cookies) {
  let alive = 0;
  for (const cookie of cookies) {
    const res = await stack.request("/whoami", { headers: { cookie } });
    if (res.text() === "active") alive++;
  }
  return alive;
}

describe("sessions and cache entries on one small allkeys-lru Redis", () => {
  it("the hazard: filling the cache evicts sessions (users are logged out)", async (t) => {
    await stack.restartWorker({});
    const cookies = await logInEveryone();
    assert.equal(await stillLoggedIn(cookies), USERS, "everyone is logged in before the fill");
    await fillTheCache();
    const alive = await stillLoggedIn(cookies);
    t.diagnostic(`one store: ${alive} of ${USERS} sessions survived the fill`);
    assert.ok(alive <= USERS / 2, `most sessions were evicted (${alive} of ${USERS} survived)`);
  });
});

describe("the one-store alternative: a small noeviction Redis", () => {
  it("the fill fails open (every response served), sessions survive, and a login on the full store is carried in the cookie", async (t) => {
    await stack.restartWorker({
      UPSTASH_REDIS_REST_URL: fullGateway.url,
      UPSTASH_REDIS_REST_TOKEN: fullGateway.token,
    });
    stack.worker.clearLogs();
    const cookies = await logInEveryone();
    await fillTheCache(); // asserts every response is a 200
    const alive = await stillLoggedIn(cookies);
    t.diagnostic(`noeviction: ${alive} of ${USERS} sessions survived the fill`);
    assert.equal(alive, USERS);
    // Whatever the fill left, the store is now over its maxmemory: every write is refused
    // (a big entry refused earlier may have left room for small writes).
    assert.equal(await redisCommand(fullRedis.port, "CONFIG SET maxmemory 1mb"), "+OK");
    // The store is full: a new session's write is refused (OOM) and travels in the cookie.
    const res = await stack.request("/login?user=late");
    const line = (res.headers["set-cookie"] ?? []).find((c) => c.startsWith(`${NAME}=`));
    const cookie = line.split(";")[0];
    assert.ok(cookie.length > NAME.length + 1 + 66, "a fallback cookie");
    assert.equal((await stack.request("/whoami", { headers: { cookie } })).text(), "active");
    assert.ok(stack.worker.logs().some((l) => l.includes("session write failed") && l.includes("OOM")));
  });
});

describe("sessions on a store of their own (SESSION_REDIS_REST_URL)", () => {
  it("the cure: the same fill leaves every session alive", async (t) => {
    await stack.restartWorker({
      SESSION_REDIS_REST_URL: sessionGateway.url,
      SESSION_REDIS_REST_TOKEN: sessionGateway.token,
      CACHE_NAMESPACE: "cure", // fresh cache keys: the fill starts over
    });
    const cookies = await logInEveryone();
    await fillTheCache();
    const alive = await stillLoggedIn(cookies);
    t.diagnostic(`two stores: ${alive} of ${USERS} sessions survived the fill`);
    assert.equal(alive, USERS);
  });

  it("a hit with a session costs one request to each store, sent together", async () => {
    const cacheProxy = await startRedisProxy(stack.baseVars.UPSTASH_REDIS_REST_URL);
    const sessionProxy = await startRedisProxy(sessionGateway.url);
    try {
      await stack.restartWorker({
        UPSTASH_REDIS_REST_URL: cacheProxy.url,
        SESSION_REDIS_REST_URL: sessionProxy.url,
        SESSION_REDIS_REST_TOKEN: sessionGateway.token,
        REDIS_TIMEOUT_MS: "5000", // the held answer below must not time out
        // A hit from the L1 asks no store at all (§8.7): whether the measured hit is one
        // depended on how long ago its copy was confirmed. This counts a hit that asks Redis.
        CACHE_L1_BYTES: "0",
      });
      const [cookie] = await logInEveryone();
      await stack.request("/shared", { headers: { cookie } });
      await settle();
      assert.equal(xc(await stack.request("/shared", { headers: { cookie } })), "HIT");
      await settle();
      cacheProxy.reset();
      sessionProxy.reset();
      // Hold the cache's answer back: the session request must arrive while it is held.
      cacheProxy.fault({ delayMs: 800 });
      const hit = await stack.request("/shared", { headers: { cookie } });
      cacheProxy.fault(null);
      assert.equal(xc(hit), "HIT");
      // (Counters may be flushed to the cache store in the background: only lookups count.)
      const lookups = cacheProxy.requests().filter((r) => r.body.includes('"MGET"'));
      assert.equal(lookups.length, 1, "one request to the cache store");
      assert.equal(sessionProxy.total(), 1, "one request to the session store");
      const [cacheRequest] = lookups;
      const [sessionRequest] = sessionProxy.requests();
      assert.ok(!cacheProxy.requests().some((r) => r.body.includes(":sess:")), "no session op on the cache store");
      assert.ok(sessionRequest.body.includes(":sess:"), "the session read went to the session store");
      assert.ok(!cacheRequest.body.includes(":sess:"), "and not to the cache store");
      assert.ok(
        sessionRequest.at < cacheRequest.at + 800,
        "sent while the cache request was still unanswered (in parallel, not after it)",
      );
    } finally {
      await cacheProxy.stop();
      await sessionProxy.stop();
    }
  });

  it("/__edge/health reports both stores", async () => {
    const sessionProxy = await startRedisProxy(sessionGateway.url);
    try {
      await stack.restartWorker({
        SESSION_REDIS_REST_URL: sessionProxy.url,
        SESSION_REDIS_REST_TOKEN: sessionGateway.token,
      });
      const ok = (await stack.request("/__edge/health")).json();
      assert.deepEqual(ok, {
        status: "ok",
        store: "upstash",
        redis: "ok",
        sessions: { store: "upstash", redis: "ok" },
      });
      sessionProxy.fault({ status: 500 });
      const degraded = (await stack.request("/__edge/health")).json();
      assert.deepEqual(degraded, {
        status: "degraded",
        store: "upstash",
        redis: "ok",
        sessions: { store: "upstash", redis: "unreachable" },
      });
    } finally {
      await sessionProxy.stop();
    }
  });
});
