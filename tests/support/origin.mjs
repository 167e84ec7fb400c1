// A counting test origin: a real node http server on 127.0.0.1 whose answer per path a test
// sets, which counts requests per path and records what it received (method, URL, headers,
// body), so tests can assert both what reached the origin and how often.
//
//   const origin = await startOrigin();
//   origin.route("/x", async ({ req, res, body }) => { res.end("hi"); });
//   origin.count("/x"); origin.last("/x").headers; origin.reset(); await origin.stop();
//
// A route's handler gets { req, res, body, received } where `body` is the whole request body
// (a Buffer) — unless the route was added with { streamBody: true }, in which case the handler
// reads `req` itself. Unrouted paths answer 200 with a JSON echo of the request.
import http from "node:http";

export async function startOrigin() {
  const routes = new Map();
  const counts = new Map();
  const received = [];
  const sockets = new Set();

  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, "http://origin").pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const record = {
      method: req.method,
      url: req.url,
      path,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: null,
    };
    received.push(record);
    const route = routes.get(path);
    try {
      if (!route?.streamBody) {
        record.body = await readBody(req);
      }
      if (route) {
        await route.handler({ req, res, body: record.body, received: record });
      } else {
        echo(res, record);
      }
    } catch (error) {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain" });
      }
      res.end(`test origin handler failed: ${error?.stack ?? error}`);
    }
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 30_000;

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    /** Sets the handler for one exact path. */
    route(path, handler, { streamBody = false } = {}) {
      routes.set(path, { handler, streamBody });
    },
    /** Requests received for `path` (any method). */
    count(path) {
      return counts.get(path) ?? 0;
    },
    /** Requests received in all. */
    total() {
      return received.length;
    },
    /** The last request received for `path`, or undefined. */
    last(path) {
      return received.filter((r) => r.path === path).at(-1);
    },
    /** Every request received, oldest first. */
    requests() {
      return received.slice();
    },
    /** Forgets counts, records and routes. */
    reset() {
      routes.clear();
      counts.clear();
      received.length = 0;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function echo(res, record) {
  const body = JSON.stringify({
    method: record.method,
    url: record.url,
    headers: record.headers,
    bodyLength: record.body?.length ?? 0,
  });
  res.writeHead(200, { "content-type": "application/json" });
  res.end(body);
}
