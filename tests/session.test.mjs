// Sessions at the edge (docs §5): the signed cookie, what the origin sees, how the origin
// steers sessions (Set, Rotate, Destroy), strictness about cookies we did not issue, idle and
// absolute expiry, per-session cache variants (Vary: Cookie), the Redis cost of a session-scoped
// hit, and the SESSION_MAX_BYTES limit.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";

import { sleep } from "./support/harness.mjs";
import { startProxiedStack } from "./support/redis-proxy.mjs";
import { xc, settle } from "./support/cache-helpers.mjs";

const SECRET = "test-session-secret-0123456789-abcdefghij"; // ≥ 32 bytes
const VARS = { SESSION_SECRET: SECRET, SESSION_MAX_BYTES: "1024" };
const NAME = "__Host-session";
const COOKIE_RE = new RegExp(
  `^${NAME}=([A-Za-z0-9_-]{22})\\.([A-Za-z0-9_-]{43}); HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=(\\d+)$`,
);

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const macOf = (id, secret = SECRET) => createHmac("sha256", secret).update(id).digest("base64url");

let stack;
let proxy;

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
  installRoutes();
});

function installRoutes() {
  // /login?user=X[&extra=N]: sets the session data.
  stack.origin.route("/login", ({ req, res }) => {
    const q = new URL(req.url, "http://o").searchParams;
    const data = { user: q.get("user") };
    if (q.get("extra")) data.extra = "x".repeat(Number(q.get("extra")));
    res.writeHead(200, { "content-type": "text/plain", "edge-session-set": JSON.stringify(data) });
    res.end("logged in");
  });
  stack.origin.route("/whoami", ({ req, res }) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(seenSession(req.headers)));
  });
  stack.origin.route("/rotate", ({ res }) => {
    res.writeHead(200, { "edge-session-rotate": "1" });
    res.end("rotated");
  });
  stack.origin.route("/logout", ({ res }) => {
    res.writeHead(200, { "edge-session-destroy": "1" });
    res.end("bye");
  });
  // Per-session cached content.
  stack.origin.route("/profile", ({ req, res }) => {
    const who = seenSession(req.headers).data?.user ?? "anonymous";
    res.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=60", vary: "Cookie" });
    res.end(`profile of ${who}`);
  });
}

/** What the origin saw of the session. */
function seenSession(headers) {
  const id = headers["edge-session-id"] ?? null;
  const raw = headers["edge-session"];
  return { id, data: raw === undefined ? null : JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) };
}

/** Our Set-Cookie header on a response, or undefined. */
function ourSetCookie(res) {
  return (res.headers["set-cookie"] ?? []).find((c) => c.startsWith(`${NAME}=`));
}
function isCleared(res) {
  const c = ourSetCookie(res);
  return c !== undefined && c.startsWith(`${NAME}=;`) && /Max-Age=0/.test(c);
}

/** Logs `user` in; answers { cookie: "name=value", id, mac, setCookie }. */
async function login(user, query = "") {
  const res = await stack.request(`/login?user=${user}${query}`);
  assert.equal(res.status, 200);
  const setCookie = ourSetCookie(res);
  assert.ok(setCookie, `no session cookie issued: ${JSON.stringify(res.headers["set-cookie"])}`);
  const m = setCookie.match(COOKIE_RE);
  assert.ok(m, `cookie: ${setCookie}`);
  return { cookie: `${NAME}=${m[1]}.${m[2]}`, id: m[1], mac: m[2], setCookie, res };
}

async function whoami(cookie, headers = {}) {
  const res = await stack.request("/whoami", { headers: cookie ? { cookie, ...headers } : headers });
  assert.ok(res.status < 500, `whoami answered ${res.status}`);
  return { res, seen: res.json(), origin: stack.origin.last("/whoami").headers };
}

describe("the cookie and what the origin sees", () => {
  it("Edge-Session-Set creates a session with an exact cookie; the directive never reaches the client", async () => {
    const { setCookie, id, mac, res } = await login("alice");
    const m = setCookie.match(COOKIE_RE);
    assert.equal(m[3], "1209600", "Max-Age is SESSION_TTL (default 14 days)");
    assert.equal(mac, macOf(id), "the MAC is base64url(HMAC-SHA256(secret, id))");
    assert.equal(Buffer.from(id, "base64url").length, 16, "128-bit id");
    assert.equal(res.headers["edge-session-set"], undefined);
    assert.equal(res.text(), "logged in");
    const second = await login("alice");
    assert.notEqual(second.id, id, "ids are random");
  });

  it("the origin sees Edge-Session-Id and Edge-Session, never our cookie; other cookies pass", async () => {
    const { cookie, id } = await login("alice");
    const { seen, origin } = await whoami(`theme=dark; ${cookie}; lang=en`);
    assert.equal(seen.id, id);
    assert.deepEqual(seen.data, { user: "alice" });
    assert.ok(!String(origin.cookie ?? "").includes(NAME), `origin saw Cookie: ${origin.cookie}`);
    assert.match(origin.cookie ?? "", /theme=dark/);
    assert.match(origin.cookie ?? "", /lang=en/);
  });

  it("Edge-Session-Set on a live session replaces the data and keeps the id", async () => {
    const { cookie, id } = await login("alice");
    const res = await stack.request("/login?user=alice2", { headers: { cookie } });
    const reissued = ourSetCookie(res);
    if (reissued) assert.match(reissued, new RegExp(`^${NAME}=${id}\\.`), "same id");
    const { seen } = await whoami(cookie);
    assert.equal(seen.id, id);
    assert.deepEqual(seen.data, { user: "alice2" });
  });

  it("client-sent Edge-Session* headers are stripped, with and without a session", async () => {
    const spoof = {
      "edge-session-id": "attacker",
      "edge-session": b64url(JSON.stringify({ user: "root" })),
      "edge-session-set": '{"user":"root"}',
    };
    const anon = await whoami(null, spoof);
    assert.deepEqual(anon.seen, { id: null, data: null });
    assert.equal(anon.origin["edge-session-set"], undefined);

    const { cookie, id } = await login("alice");
    const live = await whoami(cookie, spoof);
    assert.equal(live.seen.id, id);
    assert.deepEqual(live.seen.data, { user: "alice" });
    assert.equal(live.origin["edge-session-set"], undefined);
    // And a client cannot steer its session with a request header.
    const after = await whoami(cookie);
    assert.deepEqual(after.seen.data, { user: "alice" });
  });

  it("a response that changes the session is never stored", async () => {
    stack.origin.route("/login-cacheable", ({ res }) => {
      res.writeHead(200, { "cache-control": "max-age=60", "edge-session-set": '{"user":"x"}' });
      res.end("hi");
    });
    const first = await stack.request("/login-cacheable");
    assert.ok(ourSetCookie(first));
    await settle();
    const second = await stack.request("/login-cacheable");
    assert.notEqual(xc(second), "HIT");
    assert.ok(ourSetCookie(second), "the second anonymous client gets its own session");
    assert.notEqual(ourSetCookie(second), ourSetCookie(first), "a session cookie was served from the cache");
    assert.equal(stack.origin.count("/login-cacheable"), 2);
  });
});

describe("cookies we did not issue", () => {
  /** Sends `cookie`; asserts: no session at the origin, no 5xx, our cookie cleared. */
  async function refused(cookie, { expectNoLookup = true } = {}) {
    proxy.reset();
    const { res, seen, origin } = await whoami(cookie);
    assert.equal(res.status, 200);
    assert.deepEqual(seen, { id: null, data: null }, `origin saw a session for ${cookie.slice(0, 80)}`);
    assert.ok(!String(origin.cookie ?? "").includes(`${NAME}=`), `origin saw our cookie: ${origin.cookie}`);
    assert.ok(isCleared(res), `cookie not cleared: ${JSON.stringify(res.headers["set-cookie"])}`);
    await settle();
    if (expectNoLookup) {
      const sessionCommands = proxy.commands().filter((c) => c.some((a) => String(a).includes(":sess:")));
      assert.deepEqual(sessionCommands, [], "a refused cookie caused a session lookup in Redis");
    }
    return res;
  }

  it("tampered MAC", async () => {
    const { id, mac } = await login("alice");
    const flipped = mac.slice(0, 10) + (mac[10] === "A" ? "B" : "A") + mac.slice(11);
    await refused(`${NAME}=${id}.${flipped}`);
  });

  it("tampered id (the MAC of another id)", async () => {
    const alice = await login("alice");
    const bob = await login("bob");
    await refused(`${NAME}=${alice.id}.${bob.mac}`);
  });

  it("forged (random id, random MAC) and signed with another secret", async () => {
    await refused(`${NAME}=${b64url(randomBytes(16))}.${b64url(randomBytes(32))}`);
    const id = b64url(randomBytes(16));
    await refused(`${NAME}=${id}.${macOf(id, "another-secret-of-sufficient-length-000")}`);
  });

  it("truncated", async () => {
    const { id, mac } = await login("alice");
    await refused(`${NAME}=${id}`);
    await refused(`${NAME}=${id}.`);
    await refused(`${NAME}=${id}.${mac.slice(0, 20)}`);
    await refused(`${NAME}=${id.slice(0, 10)}.${mac}`);
  });

  it("oversized (5 KB)", async () => {
    await refused(`${NAME}=${"A".repeat(5_000)}`);
  });

  it("garbage", async () => {
    for (const value of ["%%%", "..", "=", "a.b.c", "\u00e9\u00e9", '"quoted"', " . "]) {
      await refused(`${NAME}=${value}`);
    }
  });

  it("a forged cookie on a write (no cache lookup) causes no session request to Redis", async () => {
    proxy.reset();
    const res = await stack.request("/whoami", {
      method: "POST",
      headers: { cookie: `${NAME}=${b64url(randomBytes(16))}.${b64url(randomBytes(32))}` },
      body: "x",
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { id: null, data: null });
    assert.ok(isCleared(res));
    await settle();
    // (The 2xx write's invalidation of the URL's GET goes to Redis; nothing for the session.)
    const sessionRequests = proxy.requests().filter((r) => r.body.includes(":sess:"));
    assert.deepEqual(sessionRequests.map((r) => r.body.slice(0, 200)), []);
  });

  it("a validly signed id we never issued is not adopted", async () => {
    const id = b64url(randomBytes(16));
    const cookie = `${NAME}=${id}.${macOf(id)}`;
    // Signed correctly, so it is looked up; Redis has no record: no session, cookie cleared.
    await refused(cookie, { expectNoLookup: false });
    // Setting data with it creates a new id, never the client's.
    const res = await stack.request("/login?user=mallory", { headers: { cookie } });
    const issued = ourSetCookie(res);
    assert.ok(issued && !isCleared(res), JSON.stringify(res.headers["set-cookie"]));
    assert.ok(!issued.startsWith(`${NAME}=${id}.`), "the client-chosen id was adopted");
  });
});

describe("rotate and destroy", () => {
  it("Edge-Session-Rotate issues a new id with the same data; the old cookie is dead", async () => {
    const old = await login("alice");
    const res = await stack.request("/rotate", { headers: { cookie: old.cookie } });
    assert.equal(res.status, 200);
    assert.equal(res.headers["edge-session-rotate"], undefined);
    const m = (ourSetCookie(res) ?? "").match(COOKIE_RE);
    assert.ok(m, `no new cookie: ${JSON.stringify(res.headers["set-cookie"])}`);
    assert.notEqual(m[1], old.id);
    const fresh = `${NAME}=${m[1]}.${m[2]}`;
    const now = await whoami(fresh);
    assert.equal(now.seen.id, m[1]);
    assert.deepEqual(now.seen.data, { user: "alice" });
    const dead = await whoami(old.cookie);
    assert.deepEqual(dead.seen, { id: null, data: null });
    assert.ok(isCleared(dead.res));
  });

  it("Edge-Session-Destroy deletes the session and expires the cookie", async () => {
    const { cookie } = await login("alice");
    const res = await stack.request("/logout", { headers: { cookie } });
    assert.equal(res.status, 200);
    assert.equal(res.headers["edge-session-destroy"], undefined);
    assert.ok(isCleared(res), JSON.stringify(res.headers["set-cookie"]));
    const after = await whoami(cookie);
    assert.deepEqual(after.seen, { id: null, data: null });
  });
});

describe("per-session cache variants (Vary: Cookie)", () => {
  it("two users and an anonymous client each get their own variant", async () => {
    const alice = await login("alice");
    const bob = await login("bob");
    const get = (cookie) => stack.request("/profile", { headers: cookie ? { cookie } : {} });

    const a1 = await get(alice.cookie);
    assert.equal(a1.text(), "profile of alice");
    await settle();
    const b1 = await get(bob.cookie);
    assert.equal(b1.text(), "profile of bob");
    assert.equal(xc(b1), "MISS", "bob was served alice's variant?");
    await settle();
    const n1 = await get(null);
    assert.equal(n1.text(), "profile of anonymous");
    assert.equal(xc(n1), "MISS");
    await settle();

    const a2 = await get(alice.cookie);
    const b2 = await get(bob.cookie);
    const n2 = await get(null);
    assert.deepEqual(
      [a2, b2, n2].map((r) => [xc(r), r.text()]),
      [["HIT", "profile of alice"], ["HIT", "profile of bob"], ["HIT", "profile of anonymous"]],
    );
    // The key holds the session and the cookies the origin saw (ours removed): another
    // cookie makes another variant, since the origin may have built the page from it.
    const a3 = await get(`theme=dark; ${alice.cookie}`);
    assert.deepEqual([xc(a3), a3.text()], ["MISS", "profile of alice"]);
    // A forged cookie is anonymous, never someone's variant.
    const forged = await get(`${NAME}=${alice.id}.${bob.mac}`);
    assert.equal(forged.text(), "profile of anonymous");
    assert.equal(stack.origin.count("/profile"), 4);
  });

  it("a session-scoped hit costs one Redis HTTP request, session lookup included", async () => {
    const carol = await login("carol");
    await stack.request("/profile", { headers: { cookie: carol.cookie } });
    await settle();
    await stack.request("/profile", { headers: { cookie: carol.cookie } });
    await settle();
    proxy.reset();
    const N = 5;
    for (let i = 0; i < N; i++) {
      const hit = await stack.request("/profile", { headers: { cookie: carol.cookie } });
      assert.equal(xc(hit), "HIT");
      assert.equal(hit.text(), "profile of carol");
    }
    await settle();
    const all = proxy.requests();
    const isStats = (r) => {
      try {
        const cmds = JSON.parse(r.body);
        return cmds.every((c) => String(c[0]).toUpperCase() === "INCRBY" && String(c[1]).includes(":stats:"));
      } catch {
        return false;
      }
    };
    const lookups = all.filter((r) => !isStats(r));
    console.log(`redis requests for ${N} session-scoped hits: ${lookups.length} (+ ${all.length - lookups.length} stats flushes)`);
    assert.equal(lookups.length, N, lookups.map((r) => r.body.slice(0, 300)).join("\n"));
    for (const r of lookups) assert.match(r.body, /:sess:/, "the session was read in the same request");
  });
});

describe("SESSION_MAX_BYTES", () => {
  it("oversized data is refused: no session created", async () => {
    stack.worker.clearLogs();
    const res = await stack.request("/login?user=big&extra=5000");
    assert.equal(res.status, 200);
    assert.equal(ourSetCookie(res), undefined, "a session was created with oversized data");
    assert.equal(res.headers["edge-session-set"], undefined);
    await settle();
    assert.ok(
      stack.worker.logs().some((l) => /SESSION_MAX_BYTES|too.large|refused/i.test(l)),
      `no log line about the refusal: ${stack.worker.logs().slice(-5).join(" | ")}`,
    );
  });

  it("oversized data on a live session leaves it unchanged", async () => {
    const { cookie, id } = await login("alice");
    const res = await stack.request("/login?user=big&extra=5000", { headers: { cookie } });
    assert.equal(res.status, 200);
    assert.ok(!isCleared(res));
    const { seen } = await whoami(cookie);
    assert.equal(seen.id, id);
    assert.deepEqual(seen.data, { user: "alice" });
  });
});

describe("expiry", () => {
  before(async () => {
    await stack.restartWorker({ ...VARS, SESSION_TTL: "2", SESSION_ABSOLUTE_TTL: "4" });
  });
  after(async () => {
    await stack.restartWorker(VARS);
  });

  it("idle expiry: unused for longer than SESSION_TTL, the session is gone", async () => {
    const { cookie, setCookie } = await login("alice");
    assert.match(setCookie, /Max-Age=2$/);
    assert.deepEqual((await whoami(cookie)).seen.data, { user: "alice" });
    await sleep(2_800);
    const { res, seen } = await whoami(cookie);
    assert.deepEqual(seen, { id: null, data: null });
    assert.ok(isCleared(res));
  });

  it("use slides the idle TTL, but never past SESSION_ABSOLUTE_TTL", async () => {
    const { cookie } = await login("bob");
    const started = Date.now();
    // Touch every ~0.9 s: each use slides the 2 s idle TTL, so it stays alive past 2 s...
    for (const at of [900, 1800, 2700, 3400]) {
      await sleep(Math.max(0, started + at - Date.now()));
      const { seen } = await whoami(cookie);
      assert.deepEqual(seen.data, { user: "bob" }, `dead after ${Date.now() - started} ms of regular use`);
    }
    // ...until 4 s after creation, however active.
    await sleep(Math.max(0, started + 4_400 - Date.now()));
    const { res, seen } = await whoami(cookie);
    assert.deepEqual(seen, { id: null, data: null }, "alive past SESSION_ABSOLUTE_TTL");
    assert.ok(isCleared(res));
  });
});
