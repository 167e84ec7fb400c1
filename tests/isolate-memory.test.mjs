// What an isolate keeps after its requests are done (issue 14 item 3, docs §12.5): the JS heap
// must not grow with the number of requests served. Counted in V8 heap snapshots through
// workerd's inspector, so the figures are object counts, not timings.
//
// Found this way: every await of a JS promise through wasm-bindgen's JsFuture attached two
// closures that lived until the promise settled, and in workerd a timer or wake-up belonging
// to a finished request never settles: two closures (and their task's wasm memory) per cache
// miss, for the isolate's life. `edge_core::js_await` keeps no closure per await.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { freePort } from "./support/services.mjs";
import { startStack } from "./support/harness.mjs";
import { connectInspector, tally } from "./support/heap.mjs";

let stack;
let inspector;

before(async () => {
  stack = await startStack({ redis: true });
  const inspectorPort = await freePort();
  await stack.restartWorker({}, { inspectorPort });
  inspector = await connectInspector(inspectorPort);
});

after(async () => {
  inspector?.close();
  await stack?.stop();
});

/** `n` requests for cold keys (lookup, lock, origin, fill, lock renewal timer), 8 at a time. */
async function misses(prefix, n) {
  let next = 0;
  const one = async () => {
    while (next < n) {
      const i = next++;
      const res = await stack.request(`/leak/${prefix}/${i}`);
      assert.equal(res.status, 200);
    }
  };
  await Promise.all(Array.from({ length: 8 }, one));
}

/** Functions in the worker's heap (wasm-bindgen's closures are functions of the glue). */
function functions(snapshot) {
  let count = 0;
  for (const [kind, { count: n }] of tally(snapshot)) if (kind.startsWith("closure:")) count += n;
  return count;
}

test("the JS heap holds no more functions after 1,500 more cache misses", async () => {
  await misses("warm", 300);
  const before = functions(await inspector.snapshot());
  await misses("measured", 1_500);
  const after = functions(await inspector.snapshot());
  // Before the fix: about 3,000 more (two per miss).
  assert.ok(after - before < 150, `${after - before} more functions after 1,500 misses (${before} → ${after})`);
});
