// A JavaScript pass-through that does the work edge-cache's pass-through does around the
// origin fetch, with no wasm: the request's headers read as one list and forwarded as a record,
// the fetch with an abort signal, `cache: "no-store"` and a deadline cleared when the head
// arrives, and the response rebuilt with `X-Cache` and `Cache-Status` added. What it costs over
// bench/js-passthrough-worker.mjs is what those features cost in any language (issue 11).
function headerLines(headers) {
  let lines = "";
  for (const [name, value] of headers) lines += name + "\n" + value + "\n";
  return lines;
}
function record(lines) {
  const parts = lines.split("\n");
  const out = Object.create(null);
  for (let i = 0; i + 1 < parts.length; i += 2) out[parts[i]] = parts[i + 1];
  return out;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const controller = new AbortController();
    const init = {
      method: request.method,
      headers: record(headerLines(request.headers)),
      redirect: "manual",
      cache: "no-store",
      signal: controller.signal,
    };
    if (request.body) init.body = request.body;
    const timer = setTimeout(() => controller.abort("deadline"), 30_000);
    let response;
    try {
      response = await fetch(env.ORIGIN_URL + url.pathname + url.search, init);
    } catch (error) {
      if (controller.signal.aborted) return new Response("origin timeout\n", { status: 504 });
      return new Response("origin unreachable\n", { status: 502 });
    } finally {
      clearTimeout(timer);
    }
    const lines = headerLines(response.headers) + "x-cache\nBYPASS\ncache-status\nedge-cache; fwd=bypass; detail=rule-no-cache\n";
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers: record(lines) });
  },
};
