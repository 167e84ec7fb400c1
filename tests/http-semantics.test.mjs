// HTTP caching semantics end to end (docs §2.3, §2.9, §4.13, §4.14): Expires, statuses with
// explicit freshness, must-revalidate, clients' conditionals and ranges answered from the cache,
// revalidation with a 304 that updates a header, CDN-Cache-Control both ways, Content-Length on
// a hit. Real Redis through the gateway, the counting origin, the built worker in Miniflare.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";

import { sleep, startStack } from "./support/harness.mjs";
import { xc, cs, settle } from "./support/cache-helpers.mjs";


let stack;
before(async () => {
  stack = await startStack({ redis: true, vars: { ORIGIN_TIMEOUT_MS: "5000" } });
});
after(async () => {
  await stack?.stop();
});
beforeEach(() => stack.origin.reset());

/** A route answering `body` with `headers` and `status`. */
function serve(path, headers, body = `body of ${path}`, status = 200) {
  stack.origin.route(path, ({ res }) => {
    res.writeHead(status, { "content-type": "text/plain", ...headers });
    res.end(body);
  });
}

describe("freshness and statuses", () => {
  it("a response with only Expires is reused until then", async () => {
    const expires = new Date(Date.now() + 60_000).toUTCString();
    serve("/h/expires", { expires }, "expires only");
    assert.equal(xc(await stack.request("/h/expires")), "MISS");
    await settle();
    const again = await stack.request("/h/expires");
    assert.deepEqual([xc(again), again.text()], ["HIT", "expires only"]);
    assert.equal(stack.origin.count("/h/expires"), 1);
  });

  it("an invalid Expires means already stale: never reused", async () => {
    serve("/h/expires-zero", { expires: "0" }, "stale at once");
    await stack.request("/h/expires-zero");
    await settle();
    assert.notEqual(xc(await stack.request("/h/expires-zero")), "HIT");
    assert.equal(stack.origin.count("/h/expires-zero"), 2);
  });

  it("a 302 with max-age is reused, Location and all", async () => {
    serve("/h/redirect", { "cache-control": "max-age=60", location: "/elsewhere" }, "", 302);
    await stack.request("/h/redirect");
    await settle();
    const again = await stack.request("/h/redirect");
    assert.deepEqual([again.status, xc(again), again.headers.location], [302, "HIT", "/elsewhere"]);
    assert.equal(stack.origin.count("/h/redirect"), 1);
  });

  it("must-revalidate is never served stale, whatever stale-while-revalidate says", async () => {
    serve("/h/must", { "cache-control": "max-age=1, must-revalidate, stale-while-revalidate=30" }, "strict");
    await stack.request("/h/must");
    await sleep(1_600);
    const later = await stack.request("/h/must");
    assert.notEqual(xc(later), "STALE");
    assert.equal(stack.origin.count("/h/must"), 2, "the origin was asked, not a stale copy served");
  });

  it("a hit carries Content-Length", async () => {
    serve("/h/length", { "cache-control": "max-age=60" }, "twelve bytes");
    await stack.request("/h/length");
    await settle();
    const hit = await stack.request("/h/length");
    assert.deepEqual([xc(hit), hit.headers["content-length"]], ["HIT", "12"]);
  });
});

describe("CDN-Cache-Control (RFC 9213)", () => {
  it("takes precedence over Cache-Control: no-store in Cache-Control, max-age in CDN-Cache-Control is cached", async () => {
    serve("/h/cdn-allows", { "cache-control": "no-store", "cdn-cache-control": "max-age=60" }, "for the CDN");
    await stack.request("/h/cdn-allows");
    await settle();
    const again = await stack.request("/h/cdn-allows");
    assert.equal(xc(again), "HIT");
    assert.equal(again.headers["cache-control"], "no-store", "browsers still get the origin's Cache-Control");
  });

  it("and the other way: CDN-Cache-Control: no-store wins over a public Cache-Control", async () => {
    serve("/h/cdn-forbids", { "cache-control": "public, max-age=60", "cdn-cache-control": "no-store" }, "not here");
    const first = await stack.request("/h/cdn-forbids");
    assert.match(cs(first), /detail=no-store/);
    await settle();
    assert.notEqual(xc(await stack.request("/h/cdn-forbids")), "HIT");
  });
});

describe("clients' conditionals and ranges, from the cache", () => {
  it("If-None-Match on a fresh entry: 304 from the cache with its ETag and no body", async () => {
    serve("/h/etag", { "cache-control": "max-age=60", etag: '"v1"' }, "entity");
    await stack.request("/h/etag");
    await settle();
    const res = await stack.request("/h/etag", { headers: { "if-none-match": '"v1"' } });
    assert.deepEqual([res.status, xc(res), res.headers.etag, res.body.length], [304, "HIT", '"v1"', 0]);
    const other = await stack.request("/h/etag", { headers: { "if-none-match": '"v0"' } });
    assert.deepEqual([other.status, other.text()], [200, "entity"]);
    assert.equal(stack.origin.count("/h/etag"), 1);
  });

  it("a Range of a stored 200: 206 with Content-Range; past the end: 416", async () => {
    serve("/h/range", { "cache-control": "max-age=60" }, "0123456789");
    await stack.request("/h/range");
    await settle();
    const part = await stack.request("/h/range", { headers: { range: "bytes=2-5" } });
    assert.deepEqual([part.status, part.text(), part.headers["content-range"]], [206, "2345", "bytes 2-5/10"]);
    const past = await stack.request("/h/range", { headers: { range: "bytes=20-" } });
    assert.deepEqual([past.status, past.headers["content-range"]], [416, "bytes */10"]);
    assert.equal(stack.origin.count("/h/range"), 1);
  });
});

describe("revalidation", () => {
  it("a stale entry is revalidated by a 304 that updates a header: one origin request, no body", async () => {
    const path = "/h/revalidate";
    let version = 1;
    let bodiesSent = 0;
    stack.origin.route(path, ({ req, res }) => {
      const headers = { "cache-control": "max-age=1", etag: '"e1"', "x-version": String(version) };
      if (req.headers["if-none-match"] === '"e1"') {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      bodiesSent += 1;
      res.writeHead(200, { "content-type": "text/plain", ...headers });
      res.end("the body");
    });
    await stack.request(path);
    await sleep(1_600);
    version = 2;
    const res = await stack.request(path);
    assert.equal(res.text(), "the body");
    assert.equal(xc(res), "HIT");
    assert.match(cs(res), /fwd=stale; fwd-status=304/);
    assert.equal(res.headers["x-version"], "2", "the 304's header replaced the stored one");
    assert.equal(stack.origin.count(path), 2);
    assert.equal(bodiesSent, 1, "the revalidation cost no body");
    assert.equal(stack.origin.last(path).headers["if-none-match"], '"e1"');
  });
});
