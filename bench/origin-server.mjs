// The benchmarks' counting origin, run in its own process by bench/lib.mjs (startBenchOrigin).
// Prints its port on stdout, exits when its parent goes away.
//
// Every path answers 200 with the same ~600-byte JSON body. The query steers the answer:
//   ms=N          answer after N ms (default 0)
//   cc=VALUE      Cache-Control (default "s-maxage=3600")
//   vary=VALUE    Vary
//   session=JSON  Edge-Session-Set: JSON (create / replace the edge session)
//   size=N        a JSON body of about N bytes instead (bench/cpu.mjs uses 2048)
// GET /__bench/stats?path=P answers { count, starts, ends } (epoch ms) for requests to path P.
import http from "node:http";

const body = JSON.stringify({ items: Array.from({ length: 20 }, (_, i) => ({ id: i, name: `item ${i}` })) });
const stats = new Map();
/** Bodies of about `size` bytes, built once per size. */
const sized = new Map();
function bodyOfSize(size) {
  let b = sized.get(size);
  if (!b) {
    const items = [];
    while (JSON.stringify({ items }).length < size) items.push({ id: items.length, name: `item ${items.length}`, price: items.length * 1.5 });
    sized.set(size, (b = JSON.stringify({ items })));
  }
  return b;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://origin");
  if (url.pathname === "/__bench/stats") {
    const s = stats.get(url.searchParams.get("path")) ?? { count: 0, starts: [], ends: [] };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(s));
    return;
  }
  let s = stats.get(url.pathname);
  if (!s) stats.set(url.pathname, (s = { count: 0, starts: [], ends: [] }));
  s.count++;
  s.starts.push(Date.now());
  req.resume();
  req.on("end", () => {
    const headers = {
      "content-type": "application/json",
      "cache-control": url.searchParams.get("cc") ?? "s-maxage=3600",
    };
    if (url.searchParams.has("vary")) headers.vary = url.searchParams.get("vary");
    if (url.searchParams.has("session")) headers["edge-session-set"] = url.searchParams.get("session");
    const answer = () => {
      res.writeHead(200, headers);
      res.end(url.searchParams.has("size") ? bodyOfSize(Math.min(1 << 20, Number(url.searchParams.get("size")) || 0)) : body);
      s.ends.push(Date.now());
    };
    const ms = Number(url.searchParams.get("ms") ?? 0);
    if (ms > 0) setTimeout(answer, ms);
    else answer();
  });
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 0;
server.requestTimeout = 0;
server.maxConnections = 10_000;
server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => process.stdout.write(`${server.address().port}\n`));
process.on("disconnect", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
