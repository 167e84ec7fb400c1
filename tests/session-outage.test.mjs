// Sessions through a Redis outage (issue 18, docs §5.5, §5.11, §5.12): the built worker in
// Miniflare, real redis-server behind the gateway, and the fault-injecting proxy
// (support/redis-proxy.mjs) answering HTTP 500 for every Redis request during the "storm" (the
// gateway cannot be made to fail on demand; the proxy is the test-only fault).
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

import { sleep } from "./support/harness.mjs";
import { startProxiedStack } from "./support/redis-proxy.mjs";
import { gatewayCommand, settle } from "./support/cache-helpers.mjs";

const SECRET = "outage-session-secret-0123456789-abcdefghij";
const NAME = "__Host-session";
const SHORT = 66; // <22-char id>.<43-char MAC>

let proxied;
let stack;
let proxy;

before(async () => {
  proxied = await startProxiedStack({ SESSION_SECRET: SECRET });
  ({ stack, proxy } = proxied);
});
after(async () => {
  await proxied?.stop();
});
beforeEach(async () => {
  stack.origin.reset();
  installRoutes();
  await redisBack();
});

function installRoutes() {
  stack.origin.route("/login", ({ req, res }) => {
    const q = new URL(req.url, "http://o").searchParams;
    const data = { user: q.get("user") ?? "ada" };
    if (q.get("extra")) data.extra = "x".repeat(Number(q.get("extra")));
    res.writeHead(200, { "content-type": "text/plain", "edge-session-set": JSON.stringify(data) });
    res.end("logged in");
  });
  stack.origin.route("/whoami", ({ req, res }) => {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(seen(req.headers)));
  });
  stack.origin.route("/logout", ({ res }) => {
    res.writeHead(200, { "edge-session-destroy": "1" });
    res.end("bye");
  });
}

/** What the origin was told about the session. */
function seen(headers) {
  const raw = headers["edge-session"];
  return {
    status: headers["edge-session-status"] ?? null,
    id: headers["edge-session-id"] ?? null,
    data: raw === undefined ? null : JSON.parse(Buffer.from(raw, "base64url").toString("utf8")),
  };
}

/** The value of our Set-Cookie on a response ("" when cleared), or undefined. */
function ourCookie(res) {
  const line = (res.headers["set-cookie"] ?? []).find((c) => c.startsWith(`${NAME}=`));
  return line === undefined ? undefined : line.slice(NAME.length + 1).split(";")[0];
}
const withCookie = (value) => ({ headers: { cookie: `${NAME}=${value}` } });
const whoami = async (value) => (await stack.request("/whoami", value ? withCookie(value) : {})).json();

/** The session record Redis holds for a cookie's id, or null. */
async function recordOf(cookie) {
  const key = `edge:sess:${createHash("sha256").update(cookie.slice(0, 22)).digest("hex")}`;
  const value = await gatewayCommand(stack, ["GET", key]);
  return value === null ? null : JSON.parse(value);
}

const storm = () => proxy.fault({ status: 500 });

/** Heals the proxy and waits until the worker's circuit breaker lets requests through again. */
async function redisBack() {
  proxy.fault(null);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const health = (await stack.request("/__edge/health")).json();
    if (health.redis === "ok") return;
    if (Date.now() > deadline) throw new Error(`Redis never came back: ${JSON.stringify(health)}`);
    await sleep(200);
  }
}

async function login(query = "") {
  const res = await stack.request(`/login${query}`);
  return { res, cookie: ourCookie(res) };
}

describe("a logged-in user during a Redis 500 storm", () => {
  it("reaches the origin as unavailable, with the id the cookie proves", async () => {
    const { cookie } = await login();
    assert.equal(cookie.length, SHORT);
    storm();
    const res = await stack.request("/whoami", withCookie(cookie));
    assert.deepEqual(res.json(), { status: "unavailable", id: cookie.slice(0, 22), data: null });
    assert.equal(ourCookie(res), undefined, "the cookie is neither cleared nor replaced");
    assert.ok(proxy.count("/pipeline") > 0);
  });
});

describe("a login during the outage", () => {
  it("travels in a sealed cookie; once Redis is back the next request writes it back and returns to the short cookie", async () => {
    storm();
    stack.worker.clearLogs();
    const { res, cookie } = await login("?user=grace");
    assert.equal(res.status, 200);
    assert.equal(res.text(), "logged in");
    assert.ok(cookie.length > SHORT, `a fallback cookie: ${cookie.length} chars`);
    const line = res.headers["set-cookie"].find((c) => c.startsWith(`${NAME}=`));
    assert.ok(line.length <= 4000, "under 4 KB");
    assert.match(res.headers["cache-control"], /^private/);
    // Still down: the cookie is the session.
    assert.deepEqual(await whoami(cookie), { status: "active", id: cookie.slice(0, 22), data: { user: "grace" } });
    await redisBack();
    assert.equal(await recordOf(cookie), null, "not in Redis before a request finds it");

    const back = await stack.request("/whoami", withCookie(cookie));
    assert.deepEqual(back.json(), { status: "active", id: cookie.slice(0, 22), data: { user: "grace" } });
    assert.equal(ourCookie(back), cookie.slice(0, SHORT), "back to the short cookie, same id");
    const record = await recordOf(cookie);
    assert.deepEqual(record.d, { user: "grace" }, "the session is in Redis");
    const ttl = await gatewayCommand(stack, ["PTTL", `edge:sess:${createHash("sha256").update(cookie.slice(0, 22)).digest("hex")}`]);
    assert.ok(ttl > 0, "with its idle TTL");
    assert.deepEqual(await whoami(cookie.slice(0, SHORT)), { status: "active", id: cookie.slice(0, 22), data: { user: "grace" } });
  });

  it("an oversize Set passes as the origin sent it, with an error logged", async () => {
    storm();
    stack.worker.clearLogs();
    const { res, cookie } = await login("?extra=5000");
    assert.equal(res.status, 200);
    assert.equal(res.text(), "logged in");
    assert.equal(cookie, undefined, "no cookie of ours");
    await settle();
    assert.ok(
      stack.worker.logs().some((l) => l.includes("too large for the fallback cookie")),
      stack.worker.logs().join("\n"),
    );
  });
});

describe("fallback cookies that are refused", () => {
  it("a tampered one is invalid, cleared, and costs no session lookup", async () => {
    storm();
    const { cookie } = await login();
    await redisBack();
    const at = SHORT + 10; // inside the nonce
    const tampered = cookie.slice(0, at) + (cookie[at] === "A" ? "B" : "A") + cookie.slice(at + 1);
    proxy.reset();
    const res = await stack.request("/whoami", withCookie(tampered));
    assert.deepEqual(res.json(), { status: "invalid", id: null, data: null });
    assert.equal(ourCookie(res), "", "cleared");
    assert.ok(!proxy.commands().some((c) => JSON.stringify(c).includes(":sess")), "no session lookup");
    assert.equal(await recordOf(cookie), null, "nothing written");
  });

  it("one presented after its write-back and a logout is refused, never written again", async () => {
    storm();
    const { cookie } = await login();
    await redisBack();
    const back = await stack.request("/whoami", withCookie(cookie));
    assert.equal(back.json().status, "active");
    const out = await stack.request("/logout", withCookie(ourCookie(back)));
    assert.equal(ourCookie(out), "");
    assert.equal(await recordOf(cookie), null);
    // The copied fallback cookie, still inside its window:
    const copy = await stack.request("/whoami", withCookie(cookie));
    assert.deepEqual(copy.json(), { status: "anonymous", id: null, data: null });
    assert.equal(ourCookie(copy), "", "cleared");
    assert.equal(await recordOf(cookie), null, "not resurrected");
  });

  it("one revoked during the outage is refused once Redis is back, in any isolate", async () => {
    storm();
    const { cookie } = await login();
    const out = await stack.request("/logout", withCookie(cookie));
    assert.equal(ourCookie(out), "", "logout clears the cookie during the outage");
    // This isolate refuses the copy at once.
    assert.equal((await whoami(cookie)).status, "anonymous");
    await redisBack();
    await whoami(); // a request that reaches Redis writes the revocation
    await settle();
    // A new isolate knows nothing of the first one's memory: only Redis can refuse it.
    await stack.restartWorker({ SESSION_SECRET: SECRET });
    assert.deepEqual(await whoami(cookie), { status: "anonymous", id: null, data: null });
    assert.equal(await recordOf(cookie), null, "never written back");
  });
});

describe("destroy during the outage", () => {
  it("clears the cookie, and the copied cookie is refused once Redis is back", async () => {
    const { cookie } = await login();
    assert.notEqual(await recordOf(cookie), null);
    storm();
    const out = await stack.request("/logout", withCookie(cookie));
    assert.equal(ourCookie(out), "");
    await redisBack();
    await whoami();
    await settle();
    assert.equal(await recordOf(cookie), null, "the revocation reached Redis");
    await stack.restartWorker({ SESSION_SECRET: SECRET });
    const copy = await stack.request("/whoami", withCookie(cookie));
    assert.deepEqual(copy.json(), { status: "anonymous", id: null, data: null });
    assert.equal(ourCookie(copy), "");
  });
});
