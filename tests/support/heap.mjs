// The worker's JS heap through workerd's V8 inspector (Miniflare's `inspectorPort`): heap
// snapshots, what they hold by kind, and what retains a kind. Used by
// tests/isolate-memory.test.mjs and bench/heap-growth.mjs.
import WebSocket from "ws";

/**
 * Connects to the user worker's inspector target. `snapshot()` answers a parsed V8 heap
 * snapshot (taking one collects garbage first).
 */
export async function connectInspector(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.id.startsWith("core:user:"));
  if (!target) throw new Error("no user worker in the inspector's targets");
  const ws = new WebSocket(target.webSocketDebuggerUrl, { maxPayload: 1 << 30 });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let nextId = 0;
  const pending = new Map();
  let chunks = [];
  ws.on("message", (raw) => {
    const message = JSON.parse(raw);
    if (message.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(message.params.chunk);
    const resolve = pending.get(message.id);
    if (resolve) {
      pending.delete(message.id);
      resolve(message);
    }
  });
  const call = (method, params = {}) =>
    new Promise((resolve) => {
      const id = ++nextId;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    async snapshot() {
      await call("HeapProfiler.enable");
      // (`HeapProfiler.collectGarbage` gets no answer from workerd; a snapshot collects first.)
      chunks = [];
      await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
      return JSON.parse(chunks.join(""));
    },
    close: () => ws.close(),
  };
}

/** Count and self size per "type:name" of a snapshot's nodes (strings and numbers lumped). */
export function tally(snap) {
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [ti, ni, si] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const out = new Map();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + ti]];
    let name = snap.strings[snap.nodes[i + ni]];
    if (type === "string" || type === "concatenated string" || type === "sliced string") name = "(string)";
    if (type === "number") name = "(number)";
    const key = `${type}:${String(name).slice(0, 80)}`;
    const row = out.get(key) ?? { count: 0, size: 0 };
    row.count += 1;
    row.size += snap.nodes[i + si];
    out.set(key, row);
  }
  return out;
}

/**
 * What holds a sample of the objects `pick` selects: for each, a path of retainers (strong
 * edges only) towards the roots, avoiding the object's own cycles; paths counted.
 */
export function retainers(snap, pick, depth = 6, sample = 300) {
  const nf = snap.snapshot.meta.node_fields, ef = snap.snapshot.meta.edge_fields;
  const types = snap.snapshot.meta.node_types[0], etypes = snap.snapshot.meta.edge_types[0];
  const W = nf.length, EW = ef.length;
  const [ti, ni, eci] = ["type", "name", "edge_count"].map((f) => nf.indexOf(f));
  const [eti, eni, eto] = ["type", "name_or_index", "to_node"].map((f) => ef.indexOf(f));
  const N = snap.nodes.length / W;
  const rev = Array.from({ length: N }, () => []);
  let e = 0;
  for (let n = 0; n < N; n++) {
    const count = snap.nodes[n * W + eci];
    for (let k = 0; k < count; k++, e += EW) {
      const et = etypes[snap.edges[e + eti]];
      if (et === "weak") continue;
      const to = snap.edges[e + eto] / W;
      const nm = et === "element" || et === "hidden" ? `[${snap.edges[e + eni]}]` : snap.strings[snap.edges[e + eni]];
      rev[to].push([n, `${et}:${nm}`]);
    }
  }
  const label = (n) => `${types[snap.nodes[n * W + ti]]}:${String(snap.strings[snap.nodes[n * W + ni]]).slice(0, 40)}`;
  const out = new Map();
  let seen = 0;
  for (let n = 0; n < N && seen < sample; n++) {
    if (!pick(types[snap.nodes[n * W + ti]], snap.strings[snap.nodes[n * W + ni]])) continue;
    seen++;
    let cur = n; const path = [label(n)]; const visited = new Set([n]);
    // Breadth-first to the nearest node not in this object's own cycle, then onwards.
    for (let d = 0; d < depth; d++) {
      const r = rev[cur].find(([from]) => !visited.has(from));
      if (!r) break;
      visited.add(r[0]);
      path.push(`<-${r[1]}- ${label(r[0])}`);
      cur = r[0];
    }
    const key = path.join(" ");
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}
