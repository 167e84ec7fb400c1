// WebSockets through the worker (issue 16, docs §6.2): a real WebSocket origin (the `ws`
// package) behind edge-cache with sessions on Redis. Echo both ways, close from either side,
// a socket that outlives ORIGIN_TIMEOUT_MS (which bounds the handshake only: a silent origin
// is a 504), the session user visible to the origin on the handshake (and never a forged one),
// the client's Origin header passed unchanged, a refused upgrade passed through, and an `h2c`
// upgrade answered as a plain (cacheable) request.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { once } from "node:events";
import WebSocket, { WebSocketServer } from "ws";

import { startStack } from "./support/harness.mjs";

const SECRET = "test-session-secret-0123456789-abcdefghij"; // ≥ 32 bytes
const NAME = "__Host-session";
const TIMEOUT_MS = 600;

/**
 * The origin: plain pages (`/login` sets a session, `/socket` is a cacheable page for clients
 * that do not upgrade) and WebSockets on upgrade (`/socket` echoes, `/refused` answers 403).
 * Every handshake's headers are recorded.
 */
async function startSocketOrigin() {
  const handshakes = [];
  const pages = [];
  const closes = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://origin");
    pages.push({ path: url.pathname, headers: req.headers });
    if (url.pathname === "/login") {
      const data = { user: url.searchParams.get("user") };
      res.writeHead(200, { "content-type": "text/plain", "edge-session-set": JSON.stringify(data) });
      res.end("logged in");
    } else if (url.pathname === "/socket") {
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "public, max-age=60" });
      res.end("plain page");
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has("chat") ? "chat" : false),
  });
  server.on("upgrade", (req, socket, head) => {
    const path = new URL(req.url, "http://origin").pathname;
    handshakes.push({ path, headers: req.headers });
    if (path === "/silent") return; // never answers the handshake
    if (path === "/refused") {
      socket.end("HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n\r\nnot you");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data, isBinary) => {
        const text = isBinary ? null : data.toString();
        if (text === "close-please") ws.close(4001, "bye from the origin");
        else if (text === "who") ws.send(JSON.stringify(seenSession(req.headers)));
        else ws.send(isBinary ? data : `echo:${text}`, { binary: isBinary });
      });
      ws.on("close", (code, reason) => closes.push({ code, reason: reason.toString() }));
    });
  });
  const sockets = new Set();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    handshakes,
    pages,
    closes,
    reset() {
      handshakes.length = 0;
      pages.length = 0;
      closes.length = 0;
    },
    async stop() {
      for (const client of wss.clients) client.terminate();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** What the origin saw of the session. */
function seenSession(headers) {
  const raw = headers["edge-session"];
  return {
    id: headers["edge-session-id"] ?? null,
    data: raw === undefined ? null : JSON.parse(Buffer.from(raw, "base64url").toString("utf8")),
  };
}

let origin;
let stack;
before(async () => {
  origin = await startSocketOrigin();
  stack = await startStack({
    redis: true,
    vars: { ORIGIN_URL: origin.url, SESSION_SECRET: SECRET, ORIGIN_TIMEOUT_MS: String(TIMEOUT_MS) },
  });
});
after(async () => {
  await stack?.stop();
  await origin?.stop();
});
beforeEach(() => origin.reset());

const wsUrl = (path) => `${stack.worker.url.replace(/^http/, "ws")}${path}`;

/** Opens a WebSocket through the worker; answers it with the 101's headers once open. */
async function open(path, { headers = {}, protocols = [] } = {}) {
  const ws = new WebSocket(wsUrl(path), protocols, { headers, handshakeTimeout: 10_000 });
  const messages = [];
  const waiting = [];
  ws.on("message", (data, isBinary) => {
    const message = isBinary ? Buffer.from(data) : data.toString();
    const next = waiting.shift();
    if (next) next(message);
    else messages.push(message);
  });
  // `upgrade` and `open` fire in the same tick: listen for both before awaiting either.
  let response;
  ws.on("upgrade", (res) => (response = res));
  ws.on("unexpected-response", (_req, res) => ws.emit("error", new Error(`handshake answered ${res.statusCode}`)));
  await once(ws, "open");
  const next = () =>
    messages.length > 0 ? Promise.resolve(messages.shift()) : new Promise((resolve) => waiting.push(resolve));
  const closed = once(ws, "close").then(([code, reason]) => ({ code, reason: reason.toString() }));
  return { ws, headers: response.headers, next, closed };
}

/** A handshake the origin refuses: the status, headers and body the client got. */
async function refused(path, headers = {}) {
  const ws = new WebSocket(wsUrl(path), { headers, handshakeTimeout: 10_000 });
  ws.on("error", () => {});
  const [, res] = await once(ws, "unexpected-response");
  const chunks = [];
  for await (const chunk of res) chunks.push(chunk);
  ws.terminate();
  return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() };
}

/** Polls until `predicate()` holds (background closes travel through two runtimes). */
async function eventually(predicate, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function login(user) {
  const res = await stack.request(`/login?user=${user}`);
  assert.equal(res.status, 200);
  const setCookie = (res.headers["set-cookie"] ?? []).find((c) => c.startsWith(`${NAME}=`));
  assert.ok(setCookie, `no session cookie: ${JSON.stringify(res.headers["set-cookie"])}`);
  return setCookie.split(";")[0];
}

describe("a WebSocket through the worker", () => {
  it("echoes text and binary both ways; the 101 is a BYPASS with detail=upgrade", async () => {
    const { ws, headers, next } = await open("/socket", { protocols: ["chat"] });
    assert.equal(headers["x-cache"], "BYPASS");
    assert.match(headers["cache-status"] ?? "", /detail=upgrade/);
    assert.equal(ws.protocol, "chat", "Sec-WebSocket-Protocol goes both ways");
    ws.send("hello");
    assert.equal(await next(), "echo:hello");
    ws.send(Buffer.from([0, 1, 2, 255]));
    assert.deepEqual(await next(), Buffer.from([0, 1, 2, 255]));
    const big = "x".repeat(200_000);
    ws.send(big);
    assert.equal(await next(), `echo:${big}`);
    assert.equal(origin.handshakes.length, 1);
    assert.equal(origin.handshakes[0].headers.upgrade, "websocket");
    ws.close();
  });

  it("lives past ORIGIN_TIMEOUT_MS: the timeout bounds the handshake only", async () => {
    const { ws, next } = await open("/socket");
    await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 3));
    ws.send("still there?");
    assert.equal(await next(), "echo:still there?");
    ws.close();
  });

  it("a close from the client reaches the origin with its code and reason", async () => {
    const { ws, next, closed } = await open("/socket");
    ws.send("ping");
    assert.equal(await next(), "echo:ping");
    ws.close(4000, "bye from the client");
    await closed;
    // Earlier tests' sockets may still be closing: look for this one's code.
    const ours = () => origin.closes.find((c) => c.code === 4000);
    await eventually(() => ours() !== undefined, "the origin to see the close");
    assert.deepEqual(ours(), { code: 4000, reason: "bye from the client" });
  });

  it("a close from the origin reaches the client with its code and reason", async () => {
    const { ws, next, closed } = await open("/socket");
    ws.send("ping");
    assert.equal(await next(), "echo:ping");
    ws.send("close-please");
    assert.deepEqual(await closed, { code: 4001, reason: "bye from the origin" });
  });
});

describe("the session on the handshake", () => {
  it("the origin sees the session user, never our cookie, and the client's Origin unchanged", async () => {
    const cookie = await login("alice");
    const { ws, next } = await open("/socket", {
      headers: { cookie: `theme=dark; ${cookie}`, origin: "https://evil.example" },
    });
    const seen = origin.handshakes.at(-1).headers;
    assert.deepEqual(seenSession(seen).data, { user: "alice" });
    assert.ok(seenSession(seen).id, "Edge-Session-Id is set");
    assert.ok(!String(seen.cookie ?? "").includes(NAME), `origin saw Cookie: ${seen.cookie}`);
    assert.match(String(seen.cookie ?? ""), /theme=dark/);
    assert.equal(seen.origin, "https://evil.example", "the origin must check Origin itself");
    ws.send("who");
    assert.deepEqual(JSON.parse(await next()).data, { user: "alice" });
    ws.close();
  });

  it("a spoofed Edge-Session is stripped, with or without a session", async () => {
    const forged = Buffer.from(JSON.stringify({ user: "admin" })).toString("base64url");
    const spoof = { "edge-session": forged, "edge-session-id": "AAAAAAAAAAAAAAAAAAAAAA" };
    const anonymous = await open("/socket", { headers: spoof });
    const seen = origin.handshakes.at(-1).headers;
    assert.equal(seen["edge-session"], undefined);
    assert.equal(seen["edge-session-id"], undefined);
    anonymous.ws.close();

    const cookie = await login("bob");
    const logged = await open("/socket", { headers: { cookie, ...spoof } });
    const seenLogged = origin.handshakes.at(-1).headers;
    assert.deepEqual(seenSession(seenLogged).data, { user: "bob" });
    assert.notEqual(seenLogged["edge-session-id"], spoof["edge-session-id"]);
    logged.ws.close();
  });
});

describe("what is not a WebSocket", () => {
  it("a refused upgrade is the origin's answer, passed through", async () => {
    const res = await refused("/refused");
    assert.equal(res.status, 403);
    assert.equal(res.body, "not you");
    assert.equal(res.headers["content-type"], "text/plain");
    assert.equal(res.headers["x-cache"], "BYPASS");
    assert.equal(origin.handshakes.length, 1, "the origin was asked for an upgrade");
    assert.equal(origin.handshakes[0].headers.upgrade, "websocket");
  });

  it("a handshake the origin never answers is a 504 after ORIGIN_TIMEOUT_MS", async () => {
    const started = Date.now();
    const res = await refused("/silent");
    assert.equal(res.status, 504);
    assert.ok(Date.now() - started >= TIMEOUT_MS - 50, `answered after ${Date.now() - started} ms`);
  });

  it("an h2c upgrade is dropped: a plain request, cacheable like any other", async () => {
    const h2c = {
      upgrade: "h2c",
      connection: "Upgrade, HTTP2-Settings",
      "http2-settings": "AAMAAABkAAQCAAAAAAIAAAAA",
    };
    const first = await stack.request("/socket?h2c", { headers: h2c });
    assert.equal(first.status, 200);
    assert.equal(first.text(), "plain page");
    assert.equal(first.headers["x-cache"], "MISS");
    assert.equal(origin.handshakes.length, 0, "no upgrade reached the origin");
    const seen = origin.pages.at(-1).headers;
    for (const name of ["upgrade", "http2-settings"]) assert.equal(seen[name], undefined, name);
    assert.doesNotMatch(String(seen.connection ?? ""), /upgrade/i);
    await new Promise((resolve) => setTimeout(resolve, 250)); // the store happens after the answer
    const second = await stack.request("/socket?h2c", { headers: h2c });
    assert.equal(second.headers["x-cache"], "HIT");
    assert.equal(origin.pages.length, 1);
  });
});
