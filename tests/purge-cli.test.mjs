// The operator's purge command (scripts/purge.mjs, `npm run purge`) against the worker.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

import { sleep, startStack } from "./support/harness.mjs";

const TOKEN = "cli-admin-token-93b1";
const SCRIPT = fileURLToPath(new URL("../scripts/purge.mjs", import.meta.url));

function runPurge(args, token = TOKEN) {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, "--url", stack.worker.url, ...args], { env: { ...process.env, ADMIN_TOKEN: token } }, (error, stdout, stderr) =>
      resolve({ code: error ? error.code : 0, stdout, stderr }),
    );
  });
}

let stack;
before(async () => {
  stack = await startStack({ redis: true, vars: { ADMIN_TOKEN: TOKEN } });
  stack.origin.route("/cli/item", ({ res }) => {
    res.writeHead(200, { "cache-control": "max-age=300", "cache-tag": "cli-tag" });
    res.end("item");
  });
});
after(async () => {
  await stack?.stop();
});

describe("npm run purge", () => {
  it("purges a tag and prints the worker's answer", async () => {
    await stack.request("/cli/item");
    await sleep(250);
    assert.equal((await stack.request("/cli/item")).headers["x-cache"], "HIT");
    const out = await runPurge(["--tags", "cli-tag"]);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout), { purged: "tags", soft: false, entries: 1 });
    assert.equal((await stack.request("/cli/item")).headers["x-cache"], "MISS");
  });

  it("fails with the worker's reason on a wrong token, and purges nothing", async () => {
    await sleep(250);
    assert.equal((await stack.request("/cli/item")).headers["x-cache"], "HIT");
    const out = await runPurge(["--tags", "cli-tag"], "wrong-token");
    assert.equal(out.code, 1);
    assert.match(out.stderr, /401/);
    assert.equal((await stack.request("/cli/item")).headers["x-cache"], "HIT");
  });

  it("refuses ambiguous arguments before calling the worker", async () => {
    const out = await runPurge(["--tags", "a", "--prefix", "/x/"]);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /exactly one of/);
  });
});
