// Conformance of redis-rest-gateway with the official @upstash/redis client, against a real
// redis-server started on a spare port. Both of the client's modes: its default (responses in
// base64) and `responseEncoding: false` (plain JSON strings).
//
//   cargo build --release -p redis-rest-gateway && node --test tests/gateway-conformance.test.mjs

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { startRedis, startGateway } from "./support/services.mjs";

let redisServer;
let gateway;

before(async () => {
  redisServer = await startRedis();
  gateway = await startGateway({ redisUrl: redisServer.url });
});

after(async () => {
  await gateway?.stop();
  await redisServer?.stop();
});

const INCR_ON_STRING = "ERR value is not an integer or out of range";

/** A raw request to the gateway, for what the typed client cannot express. */
async function raw(path, { body, headers = {}, method = "POST" } = {}) {
  const res = await fetch(gateway.url + path, {
    method,
    headers: { authorization: `Bearer ${gateway.token}`, ...headers },
    body,
  });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

for (const mode of [
  { name: "base64 responses (client default)", options: {}, prefix: "b64:" },
  { name: "plain responses (responseEncoding: false)", options: { responseEncoding: false }, prefix: "plain:" },
]) {
  describe(`@upstash/redis, ${mode.name}`, () => {
    let redis;
    const k = (name) => mode.prefix + name;

    before(() => {
      redis = new Redis({ url: gateway.url, token: gateway.token, retry: false, enableTelemetry: false, ...mode.options });
    });

    it("SET with NX and PX/EX, then GET", async () => {
      assert.equal(await redis.set(k("nx"), "first", { nx: true, px: 60_000 }), "OK");
      assert.equal(await redis.set(k("nx"), "second", { nx: true, px: 60_000 }), null);
      assert.equal(await redis.get(k("nx")), "first");
      assert.equal(await redis.set(k("ex"), "v", { ex: 100 }), "OK");
      assert.equal(await redis.get(k("ex")), "v");
      assert.equal(await redis.get(k("missing")), null);
    });

    it("TTL and PTTL", async () => {
      await redis.set(k("ttl"), "v", { ex: 100 });
      const ttl = await redis.ttl(k("ttl"));
      assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
      const pttl = await redis.pttl(k("ttl"));
      assert.ok(pttl > 90_000 && pttl <= 100_000, `pttl ${pttl}`);
      assert.equal(await redis.ttl(k("no-such-key")), -2);
      await redis.set(k("persistent"), "v");
      assert.equal(await redis.ttl(k("persistent")), -1);
    });

    it("GETEX sets an expiry and returns the value", async () => {
      await redis.set(k("getex"), "value");
      assert.equal(await redis.getex(k("getex"), { ex: 50 }), "value");
      const ttl = await redis.ttl(k("getex"));
      assert.ok(ttl > 40 && ttl <= 50, `ttl ${ttl}`);
    });

    it("MGET with present and missing keys", async () => {
      await redis.set(k("m1"), "one");
      await redis.set(k("m2"), "two");
      assert.deepEqual(await redis.mget(k("m1"), k("absent"), k("m2")), ["one", null, "two"]);
    });

    it("INCR counts, and on a string gives Redis's own error text", async () => {
      assert.equal(await redis.incr(k("counter")), 1);
      assert.equal(await redis.incrby(k("counter"), 41), 42);
      await redis.set(k("text"), "not a number");
      await assert.rejects(redis.incr(k("text")), (error) => {
        assert.match(error.message, new RegExp(INCR_ON_STRING));
        return true;
      });
    });

    it("JSON values round-trip through the client's serialization", async () => {
      await redis.set(k("json"), { a: 1, nested: ["x", 2.5] });
      assert.deepEqual(await redis.get(k("json")), { a: 1, nested: ["x", 2.5] });
    });

    it("unicode values round-trip exactly", async () => {
      const value = "héllo wörld — 日本語 🎉 \u0000 tab\t quote\" backslash\\";
      await redis.set(k("unicode"), value);
      assert.equal(await redis.get(k("unicode")), value);
      assert.equal(await redis.strlen(k("unicode")), Buffer.byteLength(value, "utf8"));
    });

    it("binary-ish values (all code points 0..255) round-trip", async () => {
      const value = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");
      await redis.set(k("latin"), value);
      assert.equal(await redis.get(k("latin")), value);
    });

    it("HSET and HGETALL", async () => {
      assert.equal(await redis.hset(k("hash"), { field: "value", other: "ünï" }), 2);
      assert.deepEqual(await redis.hgetall(k("hash")), { field: "value", other: "ünï" });
      assert.equal(await redis.hgetall(k("no-hash")), null);
    });

    it("a pipeline with a failing item: in order, the error in place", async () => {
      await redis.set(k("pstr"), "abc");
      const build = () => {
        const p = redis.pipeline();
        p.set(k("p1"), "v1");
        p.incr(k("pstr"));
        p.get(k("p1"));
        return p;
      };
      const results = await build().exec({ keepErrors: true });
      assert.equal(results.length, 3);
      assert.deepEqual(results[0], { error: undefined, result: "OK" });
      assert.equal(results[1].error, INCR_ON_STRING);
      assert.deepEqual(results[2], { error: undefined, result: "v1" });
      await assert.rejects(build().exec(), /Command 2 \[ incr \] failed: ERR value is not an integer/);
    });

    it("multi-exec runs the commands together", async () => {
      const results = await redis.multi().set(k("tx"), "1").incr(k("tx")).get(k("tx")).exec();
      assert.deepEqual(results, ["OK", 2, 2]);
    });

    it("multi-exec: a runtime error is that item's error, the rest still runs", async () => {
      await redis.set(k("txstr"), "abc");
      const results = await redis.multi().incr(k("txstr")).set(k("tx2"), "after").exec({ keepErrors: true });
      assert.equal(results[0].error, INCR_ON_STRING);
      assert.equal(results[1].result, "OK");
      assert.equal(await redis.get(k("tx2")), "after");
    });

    it("EVAL, EVALSHA and the script helper's NOSCRIPT fallback", async () => {
      assert.equal(await redis.eval("return ARGV[1] .. KEYS[1]", [k("key")], ["value-"]), `value-${k("key")}`);
      await redis.scriptFlush();
      const body = `return redis.call('INCRBY', KEYS[1], ARGV[1]) -- ${mode.prefix}`;
      const script = redis.createScript(body);
      // The script cache is empty: EVALSHA fails with NOSCRIPT, the helper falls back to EVAL.
      await assert.rejects(redis.evalsha(script.sha1, [k("script")], [5]), /NOSCRIPT/);
      assert.equal(await script.exec([k("script")], [5]), 5);
      // EVAL loaded it: EVALSHA now works directly.
      assert.equal(await redis.evalsha(script.sha1, [k("script")], [2]), 7);
      const sha = await redis.scriptLoad("return {1, 'two', false}");
      assert.deepEqual(await redis.evalsha(sha, [], []), [1, "two", null]);
    });

    it("150 concurrent transactions on one counter stay atomic", async () => {
      const counter = k("atomic");
      const n = 150;
      const results = await Promise.all(
        Array.from({ length: n }, () => redis.multi().incr(counter).get(counter).exec()),
      );
      // Atomic: each transaction's GET sees exactly its own INCR, never another's.
      for (const [incremented, read] of results) {
        assert.equal(Number(read), incremented);
      }
      const seen = results.map(([incremented]) => incremented).sort((a, b) => a - b);
      assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i + 1));
      assert.equal(Number(await redis.get(counter)), n);
    });

    it("commands that cannot work over HTTP are refused with a clear error", async () => {
      for (const command of [["BLPOP", k("queue"), "1"], ["SUBSCRIBE", k("channel")], ["SELECT", "1"], ["MULTI"]]) {
        await assert.rejects(redis.exec(command), /not supported by the REST gateway/, command[0]);
      }
      // The shared connection is unharmed.
      assert.equal(await redis.exec(["PING"]), "PONG");
    });
  });
}

describe("the wire protocol, without a client library", () => {
  it("base64 encoding is exact for arbitrary bytes, except the OK status", async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const set = await raw("/set/raw-binary", { body: bytes, headers: { "upstash-encoding": "base64" } });
    assert.deepEqual(set.json, { result: "OK" });
    const got = await raw("/", { body: JSON.stringify(["GET", "raw-binary"]), headers: { "upstash-encoding": "base64" } });
    assert.deepEqual(Buffer.from(got.json.result, "base64"), bytes);
    const pong = await raw("/", { body: JSON.stringify(["PING"]), headers: { "upstash-encoding": "base64" } });
    assert.equal(pong.json.result, Buffer.from("PONG").toString("base64"));
  });

  it("JSON numbers are forwarded as their literal text", async () => {
    await raw("/", { body: '["SET","literal",1.50]' });
    assert.deepEqual((await raw("/", { body: '["GET","literal"]' })).json, { result: "1.50" });
  });

  it("every response carries an upstash-sync-token header", async () => {
    const res = await raw("/", { body: '["PING"]' });
    assert.ok(res.headers.get("upstash-sync-token"));
  });

  it("the URL form with query pairs and ?_token=", async () => {
    const res = await fetch(`${gateway.url}/set/url-key/url-value?EX=100&_token=${gateway.token}`);
    assert.deepEqual(await res.json(), { result: "OK" });
    const ttl = await fetch(`${gateway.url}/ttl/url-key?_token=${gateway.token}`);
    const { result } = await ttl.json();
    assert.ok(result > 90 && result <= 100);
  });
});

describe("@upstash/redis against the gateway's access rules", () => {
  // A second gateway on the same Redis with a read-only token besides the full one.
  // startGateway passes the environment through, so the read-only token is set there for the
  // moment the gateway starts. (Several full tokens at once are tested in Rust and Python.)
  const full = "full-" + Math.random().toString(36).slice(2);
  const readonly = "readonly-" + Math.random().toString(36).slice(2);
  let guarded;
  const client = (token) => new Redis({ url: guarded.url, token, retry: false, enableTelemetry: false });

  before(async () => {
    process.env.GATEWAY_READONLY_TOKEN = readonly;
    try {
      guarded = await startGateway({ redisUrl: redisServer.url, token: full });
    } finally {
      delete process.env.GATEWAY_READONLY_TOKEN;
    }
  });

  after(async () => {
    await guarded?.stop();
  });

  it("server administration is refused; FLUSHDB and SCRIPT FLUSH stay available", async () => {
    const redis = client(full);
    for (const command of [["CONFIG", "SET", "maxmemory", "1mb"], ["SHUTDOWN", "NOSAVE"], ["ACL", "LIST"]]) {
      await assert.rejects(redis.exec(command), /--allow-admin-commands/, command[0]);
    }
    assert.match(await redis.exec(["INFO", "memory"]), /maxmemory:0\r\n/);
    const sha = await redis.scriptLoad("return 7");
    assert.equal(await redis.scriptFlush(), "OK");
    assert.deepEqual(await redis.scriptExists(sha), [0]);
    await redis.set("access:doomed", "v");
    assert.equal(await redis.flushdb(), "OK");
    assert.equal(await redis.dbsize(), 0);
  });

  it("a read-only token reads and cannot write", async () => {
    await client(full).set("access:k", "from the full token");
    const reader = client(readonly);
    assert.equal(await reader.get("access:k"), "from the full token");
    await assert.rejects(reader.set("access:k", "overwritten"), /NOPERM/);
    await assert.rejects(reader.del("access:k"), /NOPERM/);
    await assert.rejects(reader.eval("return redis.call('SET', KEYS[1], 'x')", ["access:k"], []), /NOPERM/);
    assert.equal(await client(full).get("access:k"), "from the full token");
  });

  it("a token that is neither is refused", async () => {
    await assert.rejects(client("not-a-token").get("access:k"), /Unauthorized/);
  });
});
