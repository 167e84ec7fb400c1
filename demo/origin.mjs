// A small demo origin for `bash scripts/dev.sh`: a few endpoints whose Cache-Control headers
// show what edge-cache does with them. Plain node, no dependencies.
//
//   node demo/origin.mjs [--port 8788] [--host 127.0.0.1]     (or PORT / HOST env vars)
import http from "node:http";

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const host = arg("host", process.env.HOST || "127.0.0.1");
const port = Number(arg("port", process.env.PORT || 8788));

let served = 0;
const items = [
  { id: 1, name: "anvil" },
  { id: 2, name: "rocket skates" },
  { id: 3, name: "giant magnet" },
];

const routes = {
  "/": (req, res) => {
    send(res, 200, { "content-type": "text/html; charset=utf-8", "cache-control": "public, max-age=60" },
      `<!doctype html><title>edge-cache demo origin</title>
<h1>edge-cache demo origin</h1>
<p>Served ${served} requests so far. Try, through the worker on :8787:</p>
<ul>
<li><a href="/api/time">/api/time</a>: <code>max-age=5</code></li>
<li><a href="/api/slow">/api/slow</a>: 2 s to answer, <code>s-maxage=10, stale-while-revalidate=30</code></li>
<li><a href="/api/private">/api/private</a>: <code>private</code>, never stored at the edge</li>
<li><a href="/api/items">/api/items</a>: <code>Cache-Tag: items</code></li>
<li><a href="/api/session">/api/session</a>: echoes the Edge-Session headers the worker sends</li>
<li><a href="/login?user=ada">/login?user=ada</a>, <a href="/logout">/logout</a>, <a href="/api/me">/api/me</a>: sessions (with <code>SESSION_SECRET</code> set)</li>
<li><a href="/__edge/health">/__edge/health</a>: the worker's own health check</li>
</ul>`);
  },
  "/api/time": (req, res) => {
    json(res, 200, { now: new Date().toISOString(), served }, { "cache-control": "public, max-age=5" });
  },
  "/api/slow": (req, res) => {
    setTimeout(() => {
      json(res, 200, { now: new Date().toISOString(), took_ms: 2000 },
        { "cache-control": "public, s-maxage=10, stale-while-revalidate=30" });
    }, 2000);
  },
  "/api/private": (req, res) => {
    json(res, 200, { account: "demo", now: new Date().toISOString() }, { "cache-control": "private, max-age=60" });
  },
  "/api/items": (req, res) => {
    json(res, 200, { items, now: new Date().toISOString() },
      { "cache-control": "public, max-age=30", "cache-tag": "items" });
  },
  // Sessions (needs SESSION_SECRET on the worker): the origin never parses a cookie. It reads
  // the session from Edge-Session (base64url JSON) and steers it with response headers.
  "/login": (req, res) => {
    const user = new URL(req.url, "http://origin").searchParams.get("user") || "demo";
    json(res, 200, { logged_in: user }, {
      "cache-control": "no-store",
      "edge-session-set": JSON.stringify({ user, since: new Date().toISOString() }),
      "edge-session-rotate": "1", // a new id at a privilege change
    });
  },
  "/logout": (req, res) => {
    json(res, 200, { logged_out: true }, { "cache-control": "no-store", "edge-session-destroy": "1" });
  },
  "/api/me": (req, res) => {
    const raw = req.headers["edge-session"];
    const session = raw ? JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) : null;
    // One cached variant per session: Vary: Cookie keys the entry by the session id.
    json(res, 200, { session, now: new Date().toISOString() }, { "cache-control": "public, max-age=30", vary: "Cookie" });
  },
  "/api/session": (req, res) => {
    const edgeHeaders = Object.fromEntries(
      Object.entries(req.headers).filter(([name]) => name.startsWith("edge-session")));
    json(res, 200, { received: edgeHeaders, now: new Date().toISOString() }, { "cache-control": "no-store" });
  },
};

const server = http.createServer((req, res) => {
  served += 1;
  const path = new URL(req.url, "http://origin").pathname;
  const route = routes[path];
  console.log(`${new Date().toISOString()} ${req.method} ${req.url} ${route ? "" : "404"}`);
  if (route) return route(req, res);
  json(res, 404, { error: "not found", path }, { "cache-control": "public, max-age=10" });
});

function json(res, status, body, headers) {
  send(res, status, { "content-type": "application/json", ...headers }, JSON.stringify(body) + "\n");
}

function send(res, status, headers, body) {
  res.writeHead(status, headers);
  res.end(body);
}

server.listen(port, host, () => {
  console.log(`demo origin listening on http://${host}:${port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => { server.closeAllConnections(); server.close(); process.exit(0); });
}
