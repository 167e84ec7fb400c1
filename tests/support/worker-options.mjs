// Miniflare options for running a worker on loopback: the built edge-cache (build/, from
// `npm run build`) or a plain JavaScript module worker (the baselines in bench/). The one place
// that says how the worker is loaded, shared by the test harness and every benchmark.
//
//   new Miniflare(workerOptions({ bindings: { ORIGIN_URL }, onLogLine }))       // edge-cache
//   new Miniflare(workerOptions({ script: "bench/js-passthrough-worker.mjs" })) // a JS worker
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** The built worker's entry module and its wasm (written by `npm run build`). */
export const EDGE_SCRIPT = path.join(ROOT, "build", "worker", "shim.mjs");
export const EDGE_WASM = path.join(ROOT, "build", "index_bg.wasm");

// The deployed worker's date (wrangler.toml), so local runs see the same runtime behaviour.
const COMPATIBILITY_DATE = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8").match(
  /^compatibility_date\s*=\s*"([^"]+)"/m,
)[1];

/**
 * Options for `new Miniflare(...)` / `mf.setOptions(...)`: `script` (default: the built
 * edge-cache) with `bindings` as its vars, listening on 127.0.0.1 on a free port. Each
 * non-empty line the runtime prints goes to `onLogLine` (dropped without one). `extra` adds or
 * overrides Miniflare options (e.g. `name`, `upstream`).
 */
export function workerOptions({ script = EDGE_SCRIPT, bindings = {}, onLogLine, ...extra } = {}) {
  const edge = script === EDGE_SCRIPT;
  return {
    modules: true,
    scriptPath: script,
    // build/ holds the shim's imports (the wasm-bindgen glue and the .wasm) one level up.
    modulesRoot: edge ? path.join(ROOT, "build") : path.dirname(script),
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
    cf: false,
    host: "127.0.0.1",
    port: 0,
    bindings,
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        stream.setEncoding("utf8");
        // Read the streams even when nobody wants the lines, so the runtime never waits on them.
        stream.on("data", (chunk) => {
          if (!onLogLine) return;
          for (const line of chunk.split("\n")) if (line.trim()) onLogLine(line);
        });
      }
    },
    ...extra,
  };
}
