// A floor for edge-cache's memory hit: the smallest JavaScript worker that answers a repeated
// GET from a Map in the isolate (first request: the origin; later ones: a new Response from the
// kept bytes and headers). No key normalisation, no policy, no Vary, no header hygiene: what
// any worker pays to receive a request and answer it without a subrequest.
const kept = new Map();

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const key = url.pathname + url.search;
    const hit = kept.get(key);
    if (hit !== undefined) {
      const headers = new Headers(hit.headers);
      headers.set("x-cache", "HIT");
      return new Response(hit.body, { status: hit.status, headers });
    }
    const response = await fetch(env.ORIGIN_URL + key, { redirect: "manual" });
    const body = new Uint8Array(await response.arrayBuffer());
    kept.set(key, { status: response.status, headers: [...response.headers], body });
    const headers = new Headers(response.headers);
    headers.set("x-cache", "MISS");
    return new Response(body, { status: response.status, headers });
  },
};
