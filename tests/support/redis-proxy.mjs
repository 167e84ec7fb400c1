// A counting, fault-injecting HTTP proxy between the worker and the Redis REST gateway.
//
// The worker's UPSTASH_REDIS_REST_URL points here; every request is forwarded unchanged to the
// gateway and its answer relayed back. Two jobs:
//
// 1. COUNTING: requests are counted per path (`/pipeline`, `/multi-exec`, `/`, ...) and their
//    bodies (the Redis commands, JSON) recorded, so tests can assert e.g. "a cache hit costs
//    exactly one Redis HTTP request" or "a forged session cookie causes no session lookup".
// 2. FAULT INJECTION (this is a test-only fault injector: the real gateway cannot be made slow,
//    or to answer garbage, on demand): `fault({ delayMs })` delays the answer, `{ status: 500 }`
//    answers 500, `{ garbage: true }` answers 200 with a non-JSON body, `{ refuse: true }`
//    closes the socket without answering, `{ delayAfterMs }` forwards at once (Redis executes
//    the commands now) but holds the answer back (a slow link on the way back). Add
//    `match: (body, path) => boolean` to apply the fault only to some requests (e.g. lookups:
//    `(b) => b.includes('"MGET"')`). `fault(null)` heals.
//
//   const proxy = await startRedisProxy(stack.gateway.url);
//   await stack.restartWorker({ UPSTASH_REDIS_REST_URL: proxy.url });
//   proxy.reset(); ...; proxy.count("/pipeline"); proxy.total(); proxy.commands();
//   proxy.fault({ delayMs: 1500 }); ...; proxy.fault(null);
//   await proxy.stop();
import http from "node:http";

export async function startRedisProxy(targetUrl) {
  const target = new URL(targetUrl);
  const counts = new Map();
  let log = [];
  let faultMode = null;
  const sockets = new Set();

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      const path = new URL(req.url, "http://proxy").pathname;
      counts.set(path, (counts.get(path) ?? 0) + 1);
      log.push({ path, method: req.method, body: body.toString("utf8"), at: Date.now() });
      if (log.length > 100_000) log = log.slice(-50_000);

      const mode = faultMode && (!faultMode.match || faultMode.match(body.toString("utf8"), path)) ? faultMode : null;
      if (mode?.refuse) {
        req.socket.destroy();
        return;
      }
      if (mode?.delayMs) await new Promise((r) => setTimeout(r, mode.delayMs));
      if (mode?.status) {
        res.writeHead(mode.status, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "injected fault" }));
        return;
      }
      if (mode?.garbage) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("<html>this is not JSON</html>");
        return;
      }
      const headers = { ...req.headers, host: target.host };
      delete headers.connection;
      const upstream = http.request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers, agent: keepAlive },
        (up) => {
          const out = [];
          up.on("data", (c) => out.push(c));
          up.on("end", async () => {
            if (mode?.delayAfterMs) await new Promise((r) => setTimeout(r, mode.delayAfterMs));
            const h = { ...up.headers };
            delete h.connection;
            delete h["transfer-encoding"];
            const payload = Buffer.concat(out);
            h["content-length"] = String(payload.length);
            if (!res.headersSent) res.writeHead(up.statusCode, h);
            res.end(payload);
          });
          up.on("error", () => req.socket.destroy());
        },
      );
      upstream.on("error", () => req.socket.destroy());
      upstream.end(body);
    });
  });
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 64 });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    /** Requests received for one path (`/pipeline`, `/multi-exec`, `/`). */
    count: (path) => counts.get(path) ?? 0,
    /** Requests received in all. */
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    /** Every request received since the last reset: { path, method, body, at }. */
    requests: () => log.slice(),
    /** The commands of every request (each an array of [CMD, ...args]), flattened. */
    commands() {
      const all = [];
      for (const { path, body } of log) {
        try {
          const parsed = JSON.parse(body);
          if (path === "/pipeline" || path === "/multi-exec") all.push(...parsed);
          else all.push(parsed);
        } catch {
          // not a command body
        }
      }
      return all;
    },
    reset() {
      counts.clear();
      log = [];
    },
    /**
     * Sets the fault mode: null (forward), { delayMs }, { delayAfterMs }, { status },
     * { garbage }, { refuse }; with an optional `match(body, path)` filter.
     */
    fault(mode) {
      faultMode = mode ?? null;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      keepAlive.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A stack (harness.mjs) whose worker reaches Redis through a counting proxy:
 * `{ stack, proxy, stop() }`.
 */
export async function startProxiedStack(vars) {
  const { startStack } = await import("./harness.mjs");
  const stack = await startStack({ redis: true, vars });
  let proxy;
  try {
    proxy = await startRedisProxy(stack.gateway.url);
    stack.baseVars.UPSTASH_REDIS_REST_URL = proxy.url;
    await stack.restartWorker(vars);
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return {
    stack,
    proxy,
    async stop() {
      await stack.stop();
      await proxy.stop();
    },
  };
}
