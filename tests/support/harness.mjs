// The worker under test: build/worker (from `npm run build`) in Miniflare, in front of the
// counting test origin (./origin.mjs), optionally with a real Redis behind the REST gateway
// (./services.mjs). Everything started here is stopped by `stack.stop()` (call it from an
// `after()` hook); Miniflare and services.mjs also kill their processes when node exits, so a
// failing or interrupted test leaves nothing running.
//
//   const stack = await startStack();                   // memory store, ORIGIN_URL = test origin
//   const stack = await startStack({ redis: true });    // + redis-server + gateway (UPSTASH_* vars)
//   const res = await stack.request("/path", { method, headers, body });
//   await stack.restartWorker({ ORIGIN_TIMEOUT_MS: "200" });   // other vars (null unsets one)
import { Miniflare } from "miniflare";
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";

import { startOrigin } from "./origin.mjs";
import { startGateway, startRedis } from "./services.mjs";
import { EDGE_SCRIPT, workerOptions } from "./worker-options.mjs";

// EDGE_WORKER_SCRIPT runs the suites against another worker (e.g. the JS baseline in bench/,
// to see which assertions the naive pass-through already meets).
const SCRIPT = process.env.EDGE_WORKER_SCRIPT
  ? path.resolve(process.env.EDGE_WORKER_SCRIPT)
  : EDGE_SCRIPT;

/** Miniflare options for the worker under test, with `bindings` as its vars. */
function harnessOptions(bindings, logSink, extra = {}) {
  const onLogLine = (line) => {
    // Keep the worker's console output (tests assert on log lines); echo it when asked.
    logSink(line);
    if (process.env.EDGE_TEST_LOGS) process.stderr.write(`${line}\n`);
  };
  return workerOptions({ script: SCRIPT, bindings, onLogLine, ...extra });
}

/** Drops null/undefined values so a test can unset a variable. */
function cleanBindings(vars) {
  return Object.fromEntries(Object.entries(vars).filter(([, v]) => v !== null && v !== undefined));
}

/**
 * The built worker in Miniflare with `vars` as its bindings. `extra` adds Miniflare options
 * (e.g. `upstream`, which makes request URLs point at another host: zone-route mode).
 */
export async function startWorker(vars = {}, extra = {}) {
  if (!existsSync(SCRIPT)) {
    throw new Error(`${SCRIPT} not found: run \`npm run build\` first`);
  }
  const logs = [];
  const sink = (line) => {
    logs.push(line);
    if (logs.length > 500) logs.splice(0, logs.length - 500);
  };
  const mf = new Miniflare(harnessOptions(cleanBindings(vars), sink, extra));
  let url = (await mf.ready).origin;
  return {
    mf,
    get url() {
      return url;
    },
    /** Worker log lines (console.* from the worker, runtime messages), oldest first. */
    logs: () => logs.slice(),
    clearLogs: () => logs.splice(0, logs.length),
    /** Restarts the runtime with other bindings (a fresh isolate: configuration is re-read). */
    async setVars(newVars, newExtra = {}) {
      await mf.setOptions(harnessOptions(cleanBindings(newVars), sink, newExtra));
      url = (await mf.ready).origin;
    },
    stop: () => mf.dispose(),
  };
}

/**
 * Test origin + worker (+ Redis and the gateway when `redis: true`). `vars` are added to the
 * defaults (ORIGIN_URL = the test origin; UPSTASH_* = the gateway when `redis`).
 */
export async function startStack({ redis = false, vars = {} } = {}) {
  const cleanups = [];
  const stack = {
    origin: null,
    worker: null,
    redis: null,
    gateway: null,
    baseVars: {},
    async stop() {
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch {
          // keep stopping the rest
        }
      }
      cleanups.length = 0;
    },
  };
  try {
    stack.origin = await startOrigin();
    cleanups.push(() => stack.origin.stop());
    stack.baseVars.ORIGIN_URL = stack.origin.url;
    if (redis) {
      stack.redis = await startRedis();
      cleanups.push(() => stack.redis.stop());
      stack.gateway = await startGateway({ redisUrl: stack.redis.url });
      cleanups.push(() => stack.gateway.stop());
      stack.baseVars.UPSTASH_REDIS_REST_URL = stack.gateway.url;
      stack.baseVars.UPSTASH_REDIS_REST_TOKEN = stack.gateway.token;
    }
    stack.worker = await startWorker({ ...stack.baseVars, ...vars });
    cleanups.push(() => stack.worker.stop());
  } catch (error) {
    await stack.stop();
    throw error;
  }
  /** Restarts the worker with the base vars plus `vars` (null removes a base var). */
  stack.restartWorker = (vars = {}, extra = {}) => stack.worker.setVars({ ...stack.baseVars, ...vars }, extra);
  /** A request to the worker (see `request`). */
  stack.request = (pathAndQuery, options) => request(stack.worker.url + pathAndQuery, options);
  return stack;
}

/**
 * One HTTP/1.1 request on a fresh connection, with node's http client (raw control over
 * headers; no redirects followed). Resolves with status, statusText, headers (node's lower-case
 * object; `set-cookie` is an array), rawHeaders, and the body as a Buffer.
 */
export function request(url, { method = "GET", headers = {}, body, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        const buffer = Buffer.concat(chunks);
        resolve({
          status: res.statusCode,
          statusText: res.statusMessage,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: buffer,
          text: () => buffer.toString("utf8"),
          json: () => JSON.parse(buffer.toString("utf8")),
        });
      });
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
