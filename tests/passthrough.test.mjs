// Pass-through fidelity: what the client sends reaches the origin, what the origin answers
// reaches the client, bodies stream both ways, and failures become 502/504.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";

import { request, sleep, startStack } from "./support/harness.mjs";
import { freePort } from "./support/services.mjs";

const sha256 = (buffer) => createHash("sha256").update(buffer).digest("hex");

/** Resolves with `promise`, or rejects after `ms` with `what` (a deadlock fails, not hangs). */
function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});
beforeEach(() => stack.origin.reset());

describe("request to the origin", () => {
  it("keeps method, path, query, headers and body", async () => {
    stack.origin.route("/items/42", ({ res }) => {
      res.writeHead(201, { "content-type": "text/plain", "x-origin": "yes" });
      res.end("made");
    });
    const res = await stack.request("/items/42?b=2&a=1&a=3&empty=&sp=a%20b", {
      method: "PUT",
      headers: { "x-custom": "value 1", "content-type": "application/json", accept: "text/plain" },
      body: '{"name":"anvil"}',
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers["x-origin"], "yes");
    assert.equal(res.headers["content-type"], "text/plain");
    assert.equal(res.text(), "made");

    assert.equal(stack.origin.count("/items/42"), 1);
    const seen = stack.origin.last("/items/42");
    assert.equal(seen.method, "PUT");
    assert.equal(seen.url, "/items/42?b=2&a=1&a=3&empty=&sp=a%20b");
    assert.equal(seen.headers["x-custom"], "value 1");
    assert.equal(seen.headers["content-type"], "application/json");
    assert.equal(seen.headers.accept, "text/plain");
    assert.equal(seen.body.toString(), '{"name":"anvil"}');
    // The origin is addressed as itself; the client's host and scheme travel in X-Forwarded-*.
    assert.equal(seen.headers.host, `127.0.0.1:${stack.origin.port}`);
    assert.equal(seen.headers["x-forwarded-host"], new URL(stack.worker.url).host);
    assert.equal(seen.headers["x-forwarded-proto"], "http");
    // Fetched with cache: "no-store", past the runtime's own cache (which an edge-cache purge
    // cannot reach); the runtime says so to the origin as the Fetch standard does.
    assert.equal(seen.headers["cache-control"], "no-cache");
  });

  for (const method of ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"]) {
    it(`forwards ${method}`, async () => {
      stack.origin.route("/method", ({ req, res }) => {
        res.writeHead(200, { "x-method": req.method, "content-type": "text/plain" });
        res.end(req.method === "HEAD" ? undefined : `you sent ${req.method}`);
      });
      const res = await stack.request("/method", { method });
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-method"], method);
      assert.equal(res.text(), method === "HEAD" ? "" : `you sent ${method}`);
      assert.equal(stack.origin.last("/method").method, method);
    });
  }

  it("appends the client address (CF-Connecting-IP) to X-Forwarded-For", async () => {
    // Cloudflare sets CF-Connecting-IP on every request (Miniflare: to the loopback address
    // unless the client sent one, which Cloudflare would overwrite).
    await stack.request("/xff", {
      headers: { "x-forwarded-for": "203.0.113.7", "cf-connecting-ip": "198.51.100.9" },
    });
    assert.equal(stack.origin.last("/xff").headers["x-forwarded-for"], "203.0.113.7, 198.51.100.9");

    await stack.request("/xff", { headers: { "cf-connecting-ip": "198.51.100.9" } });
    assert.equal(stack.origin.last("/xff").headers["x-forwarded-for"], "198.51.100.9");

    await stack.request("/xff", { headers: { "x-forwarded-for": "203.0.113.7" } });
    assert.equal(stack.origin.last("/xff").headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
  });

  it("drops every client header starting with Edge-Session", async () => {
    await stack.request("/session", {
      headers: {
        "Edge-Session-Id": "attacker-chosen",
        "Edge-Session": "eyJhZG1pbiI6dHJ1ZX0",
        "edge-session-set": '{"admin":true}',
        "EDGE-SESSION-ANYTHING": "1",
        "X-Edge-Session": "not a session header: kept",
      },
    });
    const seen = stack.origin.last("/session").headers;
    const leaked = Object.keys(seen).filter((name) => name.startsWith("edge-session"));
    assert.deepEqual(leaked, []);
    assert.equal(seen["x-edge-session"], "not a session header: kept");
  });

  it("drops hop-by-hop headers, including those Connection names", async () => {
    await stack.request("/hop", {
      headers: {
        connection: "keep-alive, X-Hop-One, x-hop-two",
        "x-hop-one": "1",
        "x-hop-two": "2",
        "keep-alive": "timeout=5",
        "proxy-connection": "keep-alive",
        te: "trailers",
        "x-end-to-end": "kept",
      },
    });
    const seen = stack.origin.last("/hop").headers;
    for (const name of ["x-hop-one", "x-hop-two", "keep-alive", "proxy-connection", "te"]) {
      assert.equal(seen[name], undefined, `${name} reached the origin`);
    }
    assert.equal(seen["x-end-to-end"], "kept");
  });
});

describe("response to the client", () => {
  it("keeps status, headers and every Set-Cookie", async () => {
    const cookies = [
      "a=1; Path=/; HttpOnly",
      "b=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure",
      "c=3; Max-Age=60; SameSite=Lax",
    ];
    stack.origin.route("/cookies", ({ res }) => {
      res.writeHead(418, {
        "set-cookie": cookies,
        "x-multi": ["one", "two"],
        "cache-control": "private, max-age=0",
        etag: '"v1"',
      });
      res.end("teapot");
    });
    const res = await stack.request("/cookies");
    assert.equal(res.status, 418);
    assert.deepEqual(res.headers["set-cookie"], cookies);
    assert.equal(res.headers["x-multi"], "one, two");
    assert.equal(res.headers["cache-control"], "private, max-age=0");
    assert.equal(res.headers.etag, '"v1"');
    assert.equal(res.text(), "teapot");
  });

  // The worker moves each header list across the wasm boundary as one string of lines (issue
  // 11): odd values must come out as they went in, both ways. Non-ASCII travels as UTF-8 bytes
  // (node writes a header's string as latin1, so these are UTF-8 bytes on the wire); workerd
  // itself turns bytes that are not UTF-8 into U+FFFD before the worker sees them.
  it("carries empty, spaced, non-ASCII and many headers unchanged, both ways", async () => {
    const odd = {
      "x-empty": "",
      "x-spaced": "a  b\tc",
      "x-utf8": Buffer.from("caf\u00e9 \u00ff \u{1f36a}").toString("latin1"),
      "x-punct": 'k=v; q="x,y"; \\ / : ?',
    };
    const many = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`x-many-${i}`, `value-${i}`]));
    stack.origin.route("/odd-headers", ({ res }) => {
      res.writeHead(200, { ...odd, ...many, "content-type": "text/plain" });
      res.end("ok");
    });
    const res = await stack.request("/odd-headers", { headers: { ...odd, ...many } });
    assert.equal(res.status, 200);
    const seen = stack.origin.last("/odd-headers");
    for (const [name, value] of Object.entries({ ...odd, ...many })) {
      assert.equal(seen.headers[name], value, `request header ${name}`);
      assert.equal(res.headers[name], value, `response header ${name}`);
    }
  });

  it("drops hop-by-hop response headers", async () => {
    stack.origin.route("/hop-back", ({ res }) => {
      res.writeHead(200, {
        connection: "X-Origin-Hop",
        "x-origin-hop": "1",
        upgrade: "something/1.0",
        trailer: "x-checksum",
        "proxy-connection": "keep-alive",
        "x-end-to-end": "kept",
      });
      res.end("ok");
    });
    const res = await stack.request("/hop-back");
    assert.equal(res.status, 200);
    for (const name of ["x-origin-hop", "upgrade", "trailer", "proxy-connection"]) {
      assert.equal(res.headers[name], undefined, `${name} reached the client`);
    }
    assert.equal(res.headers["x-end-to-end"], "kept");
  });

  it("passes redirects to the client instead of following them", async () => {
    stack.origin.route("/old", ({ res }) => {
      res.writeHead(302, { location: "/new", "set-cookie": "visited=1" });
      res.end();
    });
    stack.origin.route("/moved", ({ res }) => {
      res.writeHead(301, { location: `${stack.origin.url}/new` });
      res.end("moved");
    });
    const found = await stack.request("/old");
    assert.equal(found.status, 302);
    assert.equal(found.headers.location, "/new");
    assert.deepEqual(found.headers["set-cookie"], ["visited=1"]);
    const moved = await stack.request("/moved");
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.location, `${stack.origin.url}/new`);
    assert.equal(stack.origin.count("/new"), 0);
  });

  it("answers 304 and 204 without a body", async () => {
    stack.origin.route("/not-modified", ({ res }) => {
      res.writeHead(304, { etag: '"v1"' });
      res.end();
    });
    stack.origin.route("/no-content", ({ res }) => {
      res.writeHead(204, { "x-done": "1" });
      res.end();
    });
    // A request that is passed on (here: a Range on a cold key) keeps its validators; a cache
    // fill never does (tests/security.test.mjs).
    const notModified = await stack.request("/not-modified", {
      headers: { "if-none-match": '"v1"', range: "bytes=0-3" },
    });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.etag, '"v1"');
    assert.equal(stack.origin.last("/not-modified").headers["if-none-match"], '"v1"');
    const noContent = await stack.request("/no-content", { method: "DELETE" });
    assert.equal(noContent.status, 204);
    assert.equal(noContent.headers["x-done"], "1");
    assert.equal(noContent.body.length, 0);
  });
});

describe("bodies", () => {
  it("carries binary bodies byte for byte, both ways", async () => {
    const upload = randomBytes(256 * 1024);
    const download = randomBytes(300 * 1024 + 7);
    stack.origin.route("/binary", ({ res, body }) => {
      res.writeHead(200, { "content-type": "application/octet-stream", "x-received-sha256": sha256(body) });
      res.end(download);
    });
    const res = await stack.request("/binary", {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: upload,
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers["x-received-sha256"], sha256(upload));
    assert.equal(stack.origin.last("/binary").body.length, upload.length);
    assert.equal(res.body.length, download.length);
    assert.ok(res.body.equals(download), "response body differs");
  });

  it("carries 5 MB each way", async () => {
    const five = 5 * 1024 * 1024;
    const upload = randomBytes(five);
    const download = randomBytes(five);
    stack.origin.route("/large", ({ res, body }) => {
      res.writeHead(200, { "x-received-length": String(body.length), "x-received-sha256": sha256(body) });
      res.end(download);
    });
    const res = await stack.request("/large", { method: "POST", body: upload });
    assert.equal(res.status, 200);
    assert.equal(res.headers["x-received-length"], String(five));
    assert.equal(res.headers["x-received-sha256"], sha256(upload));
    assert.equal(res.body.length, five);
    assert.equal(sha256(res.body), sha256(download));
  });

  it("streams the response: the client gets the first bytes before the origin has sent the rest", async () => {
    let release;
    const released = new Promise((resolve) => (release = resolve));
    const first = Buffer.alloc(64 * 1024, "a");
    const rest = Buffer.alloc(5 * 1024 * 1024, "b");
    stack.origin.route("/stream-down", async ({ res }) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write(first);
      await released; // the rest only once the client has seen the start
      res.end(rest);
    });
    const total = await within(15_000, "streamed response", new Promise((resolve, reject) => {
      const req = http.get(`${stack.worker.url}/stream-down`, { agent: false }, (res) => {
        let length = 0;
        res.on("data", (chunk) => {
          length += chunk.length;
          release();
        });
        res.on("end", () => resolve(length));
        res.on("error", reject);
      });
      req.on("error", reject);
    }));
    release();
    assert.equal(total, first.length + rest.length);
  });

  it("streams the request: the origin gets the first bytes before the client has sent the rest", async () => {
    let originSawFirstChunk;
    const sawFirst = new Promise((resolve) => (originSawFirstChunk = resolve));
    stack.origin.route(
      "/stream-up",
      ({ req, res }) => {
        let length = 0;
        req.on("data", (chunk) => {
          length += chunk.length;
          originSawFirstChunk();
        });
        req.on("end", () => {
          res.writeHead(200, { "content-type": "text/plain" });
          res.end(String(length));
        });
      },
      { streamBody: true },
    );
    const first = Buffer.alloc(64 * 1024, "x");
    const rest = Buffer.alloc(5 * 1024 * 1024, "y");
    const answer = new Promise((resolve, reject) => {
      const req = http.request(
        `${stack.worker.url}/stream-up`,
        { method: "POST", agent: false, headers: { "content-type": "application/octet-stream" } },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk) => (text += chunk));
          res.on("end", () => resolve({ status: res.statusCode, text }));
        },
      );
      req.on("error", reject);
      req.write(first); // chunked: no Content-Length, the worker cannot know the size
      sawFirst.then(() => req.end(rest));
    });
    await within(15_000, "origin receiving the first chunk", sawFirst);
    const res = await within(15_000, "streamed request", answer);
    assert.equal(res.status, 200);
    assert.equal(res.text, String(first.length + rest.length));
  });
});

describe("origin failures", () => {
  it("answers 502 when the origin closes the connection without answering", async () => {
    stack.origin.route("/hang-up", ({ req }) => req.socket.destroy());
    const res = await stack.request("/hang-up");
    assert.equal(res.status, 502);
    assert.match(res.headers["content-type"], /^text\/plain/);
    assert.match(res.text(), /origin unreachable/);
  });

  it("answers 502 when nothing listens at ORIGIN_URL", async () => {
    const deadPort = await freePort();
    const dead = await startStack({ vars: { ORIGIN_URL: `http://127.0.0.1:${deadPort}` } });
    try {
      const started = Date.now();
      const res = await dead.request("/anything");
      assert.equal(res.status, 502);
      assert.match(res.text(), /origin unreachable/);
      assert.ok(Date.now() - started < 5_000, "a refused connection fails fast");
      assert.ok(dead.worker.logs().some((line) => line.includes("origin unreachable")), "logged");
    } finally {
      await dead.stop();
    }
  });

  it("answers 504 after ORIGIN_TIMEOUT_MS and aborts the origin request", async () => {
    const slow = await startStack({ vars: { ORIGIN_TIMEOUT_MS: "300" } });
    try {
      let originSawAbort;
      const aborted = new Promise((resolve) => (originSawAbort = resolve));
      slow.origin.route("/slow", ({ res }) => {
        const timer = setTimeout(() => res.end("too late"), 10_000);
        res.on("close", () => {
          clearTimeout(timer);
          if (!res.writableEnded) originSawAbort(true);
        });
      });
      slow.origin.route("/quick-enough", async ({ res }) => {
        await sleep(100);
        res.end("in time");
      });

      const started = Date.now();
      const res = await slow.request("/slow");
      const took = Date.now() - started;
      assert.equal(res.status, 504);
      assert.match(res.text(), /origin timed out/);
      assert.ok(took >= 250 && took < 3_000, `504 after ${took} ms`);
      assert.equal(await within(5_000, "origin connection closed by the abort", aborted), true);

      const inTime = await slow.request("/quick-enough");
      assert.equal(inTime.status, 200);
      assert.equal(inTime.text(), "in time");
    } finally {
      await slow.stop();
    }
  });
});
