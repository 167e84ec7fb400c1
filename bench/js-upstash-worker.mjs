// The peers' "naive worker cache" (bench/peers.md), for bench/cache.mjs: JavaScript with the
// official @upstash/redis client: GET the response from Redis, else fetch it from the origin and SET it
// (no lock, no stale serving, no header handling). bench/cache.mjs bundles it with esbuild
// (the client imports a bare module) and runs it in the same workerd as edge-cache.
import { Redis } from "@upstash/redis/cloudflare";

let redis;
export default {
  async fetch(request, env) {
    redis ??= new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN, automaticDeserialization: false });
    const url = new URL(request.url);
    const key = `naive:${url.pathname}${url.search}`;
    const cached = await redis.get(key);
    if (cached !== null) {
      return new Response(cached, { headers: { "content-type": "application/json", "x-cache": "HIT" } });
    }
    const res = await fetch(env.ORIGIN_URL + url.pathname + url.search, { headers: request.headers });
    const body = await res.text();
    if (res.ok) await redis.set(key, body, { ex: 3600 });
    return new Response(body, { status: res.status, headers: { "content-type": "application/json", "x-cache": "MISS" } });
  },
};
