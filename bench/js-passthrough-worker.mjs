// The baseline for bench/passthrough.mjs: the smallest reasonable JavaScript pass-through
// worker (no header hygiene, no timeout, no config validation), in the same runtime.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.ORIGIN_URL + url.pathname + url.search, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
