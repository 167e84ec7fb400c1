// Rewrites two things in the glue worker-build generates (build/index.js), for CPU per request
// (issue 11; profiles and measurements in bench/RESULTS.md). Run by scripts/build-worker.sh.
// Fails, naming what it did not find, when the glue no longer has the shape expected (a
// worker-build or wasm-bindgen upgrade), rather than silently building without the rewrite.
//
// 1. wasm-bindgen's futures wake their task queue with the global `queueMicrotask`, which in
//    workerd is a runtime API (about 200 µs of a pass-through in the profile): the import now
//    queues the same microtask through an already resolved promise, in V8 itself.
// 2. The default export: worker-build wraps the handler in a `WorkerEntrypoint` subclass and
//    builds two Proxies per request (its panic recovery: re-instantiate the wasm after a trap);
//    about 100 µs of a Redis hit's 700 in the profile. It becomes a plain `{ fetch }` object
//    keeping the same recovery: the same check before each request, the same marking of a trap.
import fs from "node:fs";

const file = process.argv[2] ?? "build/index.js";
let glue = fs.readFileSync(file, "utf8");

function need(regex, what) {
  const found = glue.match(regex);
  if (!found) {
    console.error(`patch-glue: ${file}: ${what} not found (worker-build or wasm-bindgen changed?)`);
    process.exit(1);
  }
  return found;
}

const id = "[\\w$]+";
const micro = need(new RegExp(`(__wbg_queueMicrotask_[0-9a-f]+:function\\((${id})\\)\\{)queueMicrotask\\(\\2\\)\\}`), "the queueMicrotask import");
glue = glue.replace(micro[0], () => `${micro[1]}Promise.resolve().then(${micro[2]})}`);

const [, reinit] = need(new RegExp(`function (${id})\\(\\)\\{${id}\\.criticalError&&\\(console\\.log\\("Reinitializing Wasm application"\\)`), "the re-instantiation check");
const [, markTrap] = need(new RegExp(`function (${id})\\((${id})\\)\\{\\2 instanceof WebAssembly\\.RuntimeError&&`), "the trap marker");
const [, fetchExport] = need(new RegExp(`\\.prototype\\.fetch=function\\((${id})\\)\\{return (${id})\\.call\\(this,\\1,this\\.env,this\\.ctx\\)\\}`), "the fetch handler").slice(1);
const exportList = need(new RegExp(`export\\{([^}]*\\b)(${id}) as default\\}`), "the default export");
glue = glue.replace(exportList[0], () => `export{${exportList[1]}__edgeHandler as default}`);
glue += `\nvar __edgeHandler={fetch(request,env,ctx){${reinit}();try{return ${fetchExport}(request,env,ctx)}catch(error){throw ${markTrap}(error),error}}};\n`;

fs.writeFileSync(file, glue);
console.log(`patch-glue: ${file}: queueMicrotask through a resolved promise; default export a plain { fetch }`);
