// /__edge/health and the reserved /__edge/ prefix.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { startStack } from "./support/harness.mjs";
import { freePort } from "./support/services.mjs";

describe("with the embedded memory store (no UPSTASH_REDIS_REST_URL)", () => {
  let stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.stop();
  });

  it("reports ok, memory store", async () => {
    const res = await stack.request("/__edge/health");
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/json");
    assert.equal(res.headers["cache-control"], "no-store");
    assert.deepEqual(res.json(), { status: "ok", store: "memory", redis: "ok" });
    assert.equal(stack.origin.total(), 0);
  });

  it("never forwards /__edge/ paths to the origin", async () => {
    for (const [method, path] of [
      ["GET", "/__edge/"],
      ["GET", "/__edge"],
      ["GET", "/__edge/nothing-here"],
      ["GET", "/__edge/health/extra"],
      ["GET", "/__edge/stats"],
      ["POST", "/__edge/purge"],
      ["DELETE", "/__edge/anything?x=1"],
    ]) {
      const res = await stack.request(path, { method, body: method === "POST" ? '{"everything":true}' : undefined });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.headers["content-type"], "application/json");
      assert.deepEqual(res.json(), { error: "not found" });
    }
    const wrongMethod = await stack.request("/__edge/health", { method: "POST" });
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, "GET, HEAD");
    assert.equal(stack.origin.total(), 0, "an /__edge/ request reached the origin");

    // Only the reserved prefix: look-alikes still go to the origin.
    const lookAlike = await stack.request("/__edgex/health");
    assert.equal(lookAlike.status, 200);
    assert.equal(stack.origin.count("/__edgex/health"), 1);
  });
});

describe("with Redis behind the REST gateway", () => {
  let stack;
  before(async () => {
    stack = await startStack({ redis: true });
  });
  after(async () => {
    await stack?.stop();
  });

  it("reports ok, upstash store", async () => {
    const res = await stack.request("/__edge/health");
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { status: "ok", store: "upstash", redis: "ok" });
  });

  it("reports degraded when the REST endpoint is unreachable, and still passes requests through", async () => {
    const deadPort = await freePort();
    await stack.restartWorker({ UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${deadPort}`, REDIS_TIMEOUT_MS: "300" });
    try {
      const started = Date.now();
      const res = await stack.request("/__edge/health");
      assert.ok(Date.now() - started < 3_000, "health answers within about REDIS_TIMEOUT_MS");
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { status: "degraded", store: "upstash", redis: "unreachable" });
      const passed = await stack.request("/still-served");
      assert.equal(passed.status, 200);
      assert.equal(stack.origin.count("/still-served"), 1);
    } finally {
      await stack.restartWorker();
    }
  });

  it("reports unreachable when the gateway's token is wrong", async () => {
    await stack.restartWorker({ UPSTASH_REDIS_REST_TOKEN: "not-the-token" });
    try {
      const res = await stack.request("/__edge/health");
      assert.deepEqual(res.json(), { status: "degraded", store: "upstash", redis: "unreachable" });
    } finally {
      await stack.restartWorker();
    }
  });
});
