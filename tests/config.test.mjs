// Configuration (docs §1.4): a malformed value answers every request with a 500 naming the
// variable (never a secret's value) and logs the same; the defaults work.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { startStack, startWorker, request } from "./support/harness.mjs";

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const SHORT_SECRET = "hunter2-hunter2-hunter2";

const broken = [
  { variable: "ORIGIN_TIMEOUT_MS", vars: { ORIGIN_TIMEOUT_MS: "soon" }, says: /not a whole number/ },
  { variable: "REDIS_TIMEOUT_MS", vars: { REDIS_TIMEOUT_MS: "-1" } },
  { variable: "CACHE_RULES", vars: { CACHE_RULES: "{not json" } },
  { variable: "CACHE_RULES", vars: { CACHE_RULES: '[{"path": "no-leading-slash"}]' } },
  { variable: "ORIGIN_URL", vars: { ORIGIN_URL: "ftp://example.com" } },
  { variable: "UPSTASH_REDIS_REST_TOKEN", vars: { UPSTASH_REDIS_REST_URL: "https://example.upstash.io" } },
  { variable: "SESSION_SECRET", vars: { SESSION_SECRET: SHORT_SECRET }, secret: SHORT_SECRET },
];

describe("a malformed variable", () => {
  for (const { variable, vars, says, secret } of broken) {
    it(`${variable}=${JSON.stringify(Object.values(vars)[0])}: every request gets a 500 naming it`, async () => {
      stack.origin.reset();
      stack.worker.clearLogs();
      await stack.restartWorker(vars);
      for (const path of ["/", "/api/x?y=1", "/__edge/health"]) {
        const res = await stack.request(path);
        assert.equal(res.status, 500, path);
        assert.match(res.headers["content-type"], /^text\/plain/);
        assert.match(res.text(), new RegExp(`\\b${variable}\\b`));
        if (says) assert.match(res.text(), says);
        if (secret) assert.ok(!res.text().includes(secret), "the body shows the secret");
      }
      assert.equal(stack.origin.total(), 0, "a misconfigured worker reached the origin");
      const logged = stack.worker.logs().filter((line) => line.includes(variable));
      assert.ok(logged.length > 0, `no log line names ${variable}`);
      if (secret) {
        assert.ok(!stack.worker.logs().some((line) => line.includes(secret)), "the log shows the secret");
      }
    });
  }

  it("recovers when the variable is fixed", async () => {
    await stack.restartWorker({ ORIGIN_TIMEOUT_MS: "soon" });
    assert.equal((await stack.request("/")).status, 500);
    await stack.restartWorker({ ORIGIN_TIMEOUT_MS: "5000", CACHE_RULES: '[{"path": "/api/*", "ttl": 10}]' });
    assert.equal((await stack.request("/")).status, 200);
  });
});

describe("defaults", () => {
  it("uses the embedded memory store, warning once per isolate", async () => {
    stack.worker.clearLogs();
    await stack.restartWorker();
    for (let i = 0; i < 3; i++) {
      assert.deepEqual((await stack.request("/__edge/health")).json(), { status: "ok", store: "memory", redis: "ok" });
      assert.equal((await stack.request("/page")).status, 200);
    }
    const warnings = stack.worker
      .logs()
      .filter((line) => line.includes("no UPSTASH_REDIS_REST_URL: using the embedded in-memory store"));
    assert.equal(warnings.length, 1, `expected one warning, got:\n${stack.worker.logs().join("\n")}`);
  });

  it("without ORIGIN_URL forwards to the request's own URL (zone-route mode)", async () => {
    // Miniflare's `upstream` makes the worker see request URLs on the origin's host, as a
    // worker on a Cloudflare route sees its zone's URLs.
    const worker = await startWorker({}, { upstream: stack.origin.url });
    try {
      stack.origin.reset();
      const res = await request(`${worker.url}/zone/page?q=1`);
      assert.equal(res.status, 200);
      assert.equal(stack.origin.count("/zone/page"), 1);
      assert.equal(stack.origin.last("/zone/page").url, "/zone/page?q=1");
    } finally {
      await worker.stop();
    }
  });
});
