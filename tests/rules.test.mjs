// Issue 15 (docs §3, §5.4): CACHE_RULES written as a TOML array of tables in wrangler.toml
// (docs/examples/wrangler.rules.toml, read here through wrangler itself, so the worker gets
// the rules as a JSON array binding exactly as `wrangler dev`/`deploy` hand them over), and
// the scenarios the issue lists: two hosts under one rule set, campaign parameters sharing
// one entry, bypass on a cookie, a 404 cached for its status TTL, a browser TTL shorter than
// the edge TTL, and each session setting reflected in Set-Cookie.
//
// Real parts throughout: the built worker in workerd (Miniflare), redis-server behind the
// REST gateway, and the counting origin.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";

import { unstable_getMiniflareWorkerOptions } from "wrangler";

import { startStack } from "./support/harness.mjs";
import { ROOT } from "./support/worker-options.mjs";
import { xc, cs, settle } from "./support/cache-helpers.mjs";

const EXAMPLE = path.join(ROOT, "docs", "examples", "wrangler.rules.toml");
/** The [vars] of the documented example, as wrangler passes them to the worker. */
const EXAMPLE_VARS = unstable_getMiniflareWorkerOptions(EXAMPLE).workerOptions.bindings;

let stack;
before(async () => {
  stack = await startStack({ redis: true, vars: EXAMPLE_VARS });
});
after(async () => {
  await stack?.stop();
});
beforeEach(() => {
  stack.origin.reset();
});

/** A GET with a Host header (the request URL's host, as on a zone route). */
const get = (pathAndQuery, host = "www.example.com", headers = {}) =>
  stack.request(pathAndQuery, { headers: { host, ...headers } });

/** An origin route answering `status` with `headers`, its body naming what it received. */
function serve(routePath, headers = {}, status = 200) {
  stack.origin.route(routePath, ({ req, res }) => {
    res.writeHead(status, { "content-type": "text/plain", ...headers });
    res.end(`${req.url} currency=${/currency=(\w+)/.exec(req.headers.cookie ?? "")?.[1] ?? "-"}`);
  });
}

describe("CACHE_RULES from wrangler.toml", () => {
  it("wrangler passes the TOML array of tables as a JSON array, and the worker reads it", async () => {
    assert.ok(Array.isArray(EXAMPLE_VARS.CACHE_RULES), typeof EXAMPLE_VARS.CACHE_RULES);
    assert.equal(EXAMPLE_VARS.CACHE_RULES.length, 7);
    assert.deepEqual(EXAMPLE_VARS.CACHE_RULES[2].status_ttl, { 404: 30, "5xx": 0 });
    serve("/health-of-config");
    const res = await get("/health-of-config");
    assert.equal(res.status, 200, res.text());
  });

  it("a bad rule in TOML is a configuration error naming the rule and the field", async () => {
    const rules = [...EXAMPLE_VARS.CACHE_RULES, { path: "/x", status_ttl: { "2x": 1 } }];
    await stack.restartWorker({ ...EXAMPLE_VARS, CACHE_RULES: rules });
    try {
      const res = await get("/anything");
      assert.equal(res.status, 500);
      assert.match(res.text(), /CACHE_RULES: rule 7: `status_ttl` key "2x" must be a status/);
    } finally {
      await stack.restartWorker(EXAMPLE_VARS);
    }
  });
});

describe("rules: matching and keys", () => {
  it("two hosts under one rule set", async () => {
    serve("/api/items", { "cache-control": "max-age=60" });
    const admin = await get("/api/items", "admin.example.com");
    assert.equal(xc(admin), "BYPASS");
    assert.match(cs(admin), /detail=rule-no-cache/);
    assert.equal(xc(await get("/api/items", "admin.example.com")), "BYPASS");
    const www = await get("/api/items", "www.example.com");
    assert.equal(xc(www), "MISS");
    await settle();
    assert.equal(xc(await get("/api/items", "www.example.com")), "HIT");
    assert.equal(xc(await get("/api/items", "shop.example.com")), "MISS", "the host is in the key");
    assert.equal(stack.origin.count("/api/items"), 4);
  });

  it("campaign parameters share one entry and still reach the origin", async () => {
    serve("/api/campaign", { "cache-control": "max-age=60" });
    const first = await get("/api/campaign?id=7&utm_source=news&fbclid=abc");
    assert.equal(xc(first), "MISS");
    assert.equal(stack.origin.last("/api/campaign").url, "/api/campaign?id=7&utm_source=news&fbclid=abc");
    await settle();
    for (const query of ["?id=7", "?gclid=x&id=7&utm_medium=cpc", "?id=7&ref=home&session_x=1"]) {
      assert.equal(xc(await get(`/api/campaign${query}`)), "HIT", query);
    }
    assert.equal(xc(await get("/api/campaign?id=8&utm_source=news")), "MISS");
    assert.equal(stack.origin.count("/api/campaign"), 2);
  });

  it("strip_query keeps what the key leaves out from the origin; cookies and languages are key parts", async () => {
    serve("/shop/list", { "cache-control": "max-age=60" });
    const eur = await get("/shop/list?page=2&utm_campaign=x", "www.example.com", {
      cookie: "currency=EUR",
      "accept-language": "de-CH,de;q=0.9",
    });
    assert.equal(stack.origin.last("/shop/list").url, "/shop/list?page=2");
    assert.match(eur.text(), /currency=EUR/);
    await settle();
    const usd = await get("/shop/list?page=2", "www.example.com", {
      cookie: "currency=USD",
      "accept-language": "de-CH",
    });
    assert.equal(xc(usd), "MISS");
    assert.match(usd.text(), /currency=USD/);
    await settle();
    const again = await get("/shop/list?page=2", "www.example.com", {
      cookie: "theme=dark; currency=EUR",
      "accept-language": "de-ch, en;q=0.1",
    });
    assert.equal(xc(again), "HIT");
    assert.match(again.text(), /currency=EUR/);
  });

  it("a bypass cookie passes the request through and stores nothing", async () => {
    serve("/blog/post", { "cache-control": "max-age=600" });
    const logged = await get("/blog/post", "www.example.com", { cookie: "wordpress_logged_in_abc=alice" });
    assert.equal(xc(logged), "BYPASS");
    assert.match(cs(logged), /detail=rule-bypass-cookie/);
    await settle();
    assert.equal(xc(await get("/blog/post", "www.example.com", { cookie: "sessionid=x" })), "BYPASS");
    assert.equal(xc(await get("/blog/post")), "MISS", "the bypasses stored nothing");
    await settle();
    assert.equal(xc(await get("/blog/post")), "HIT");
  });

  it("a 404 is cached for its status TTL; a 5xx only with the origin's own freshness", async () => {
    serve("/api/gone", {}, 404);
    assert.equal(xc(await get("/api/gone")), "MISS");
    await settle();
    const hit = await get("/api/gone");
    assert.equal(hit.status, 404);
    assert.equal(xc(hit), "HIT");
    const ttl = Number(cs(hit).match(/ttl=(-?\d+)/)?.[1]);
    assert.ok(ttl > 20 && ttl <= 30, cs(hit));
    serve("/api/error", {}, 500);
    await get("/api/error");
    await settle();
    assert.match(cs(await get("/api/error")), /detail=status/);
    // Without `override`, a status TTL only fills in: the origin's own max-age still wins.
    serve("/api/busy", { "cache-control": "max-age=60" }, 503);
    await get("/api/busy");
    await settle();
    assert.equal(xc(await get("/api/busy")), "HIT");
    assert.equal(stack.origin.count("/api/gone"), 1);
    assert.equal(stack.origin.count("/api/error"), 2);
  });

  it("a browser TTL shorter than the edge TTL", async () => {
    serve("/blog/long", { "cache-control": "public, max-age=600" });
    const miss = await get("/blog/long");
    assert.equal(miss.headers["cache-control"], "public, max-age=60");
    await settle();
    const hit = await get("/blog/long");
    assert.equal(xc(hit), "HIT");
    const edgeTtl = Number(cs(hit).match(/ttl=(-?\d+)/)?.[1]);
    assert.ok(edgeTtl > 500, cs(hit));
    const age = Number(hit.headers.age);
    assert.equal(hit.headers["cache-control"], `public, max-age=${60 + age}`);
    serve("/blog/private", { "cache-control": "private, max-age=600" });
    const priv = await get("/blog/private");
    assert.equal(priv.headers["cache-control"], "private, max-age=600", "never made more cacheable");
  });
});

describe("session settings in Set-Cookie", () => {
  const SECRET = "test-session-secret-0123456789-abcdefghij";
  const login = async () => {
    stack.origin.route("/login", ({ res }) => {
      res.writeHead(200, { "edge-session-set": JSON.stringify({ user: "ada" }) });
      res.end("in");
    });
    const res = await get("/login");
    return [].concat(res.headers["set-cookie"] ?? []);
  };
  after(async () => {
    await stack.restartWorker(EXAMPLE_VARS);
  });

  it("defaults: __Host-, SameSite=Lax, Max-Age", async () => {
    await stack.restartWorker({ ...EXAMPLE_VARS, SESSION_SECRET: SECRET });
    const [cookie] = await login();
    assert.match(cookie, /^__Host-session=[^;]+; HttpOnly; SameSite=Lax; Secure; Path=\/; Max-Age=1209600$/);
  });

  it("SESSION_COOKIE_SAMESITE, SESSION_COOKIE_DOMAIN, SESSION_EXPIRE_AT_BROWSER_CLOSE", async () => {
    await stack.restartWorker({
      ...EXAMPLE_VARS,
      SESSION_SECRET: SECRET,
      SESSION_COOKIE_NAME: "__Secure-sid",
      SESSION_COOKIE_SAMESITE: "None",
      SESSION_COOKIE_DOMAIN: "example.com",
      SESSION_EXPIRE_AT_BROWSER_CLOSE: true, // a TOML boolean arrives as JSON
    });
    const [cookie] = await login();
    assert.match(cookie, /^__Secure-sid=[^;]+; HttpOnly; SameSite=None; Secure; Path=\/; Domain=example\.com$/);
    await stack.restartWorker({ ...EXAMPLE_VARS, SESSION_SECRET: SECRET, SESSION_COOKIE_SAMESITE: "Strict" });
    assert.match((await login())[0], /SameSite=Strict/);
  });

  it("SESSION_COOKIE_DOMAIN with the __Host- name is a configuration error", async () => {
    await stack.restartWorker({ ...EXAMPLE_VARS, SESSION_SECRET: SECRET, SESSION_COOKIE_DOMAIN: "example.com" });
    const res = await get("/anything");
    assert.equal(res.status, 500);
    assert.match(res.text(), /SESSION_COOKIE_DOMAIN: .*__Host-/);
  });

  it("SESSION_SAVE_EVERY_REQUEST slides the TTL on every request without re-sending the cookie", async () => {
    await stack.restartWorker({
      ...EXAMPLE_VARS,
      SESSION_SECRET: SECRET,
      SESSION_TTL: "1000",
      SESSION_SAVE_EVERY_REQUEST: "true",
    });
    const [cookie] = await login();
    const pair = cookie.split(";")[0];
    serve("/page");
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const page = await get("/page", "www.example.com", { cookie: pair });
    assert.equal(page.status, 200);
    assert.equal(page.headers["set-cookie"], undefined, "Max-Age needs no refresh yet");
    await settle();
    const id = pair.split("=")[1].split(".")[0];
    const { createHash } = await import("node:crypto");
    const key = `shop:sess:${createHash("sha256").update(id).digest("hex")}`;
    const pttl = await fetch(`${stack.gateway.url}/pttl/${key}`, {
      headers: { authorization: `Bearer ${stack.gateway.token}` },
    }).then((r) => r.json());
    // Not slid, it would be under 997 s; slid by the request's PEXPIRE, over 999 s.
    assert.ok(pttl.result > 999_000, `slid on the request: ${pttl.result}`);
  });
});
