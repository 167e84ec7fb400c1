#!/usr/bin/env node
// Purges edge-cache entries through the worker's admin API (POST /__edge/purge).
//
//   EDGE_URL=https://www.example.com ADMIN_TOKEN=... npm run purge -- --tags product-42,catalog
//   npm run purge -- --url http://127.0.0.1:8787 --urls https://www.example.com/api/items?page=1
//   npm run purge -- --prefix /api/ --soft
//   npm run purge -- --everything
//
// Prints the worker's JSON answer; exits 1 on any refusal (401, 400, 404, 5xx) with its reason.
import { parseArgs } from "node:util";

const usage = `usage: purge.mjs [--url WORKER_URL] (--tags a,b | --urls u1,u2 | --prefix /p/ | --everything) [--soft]
  WORKER_URL defaults to $EDGE_URL; the token comes from $ADMIN_TOKEN (or --token).`;

let args;
try {
  args = parseArgs({
    options: {
      url: { type: "string" },
      token: { type: "string" },
      tags: { type: "string" },
      urls: { type: "string" },
      prefix: { type: "string" },
      everything: { type: "boolean" },
      soft: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  }).values;
} catch (error) {
  console.error(`purge: ${error.message}\n${usage}`);
  process.exit(2);
}
if (args.help) {
  console.log(usage);
  process.exit(0);
}
const base = args.url ?? process.env.EDGE_URL;
const token = args.token ?? process.env.ADMIN_TOKEN;
const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
const kinds = ["tags", "urls", "prefix", "everything"].filter((k) => args[k] !== undefined);
if (!base || !token || kinds.length !== 1) {
  console.error(`purge: need a worker URL, a token and exactly one of --tags, --urls, --prefix, --everything\n${usage}`);
  process.exit(2);
}
const body = {};
if (args.tags !== undefined) body.tags = list(args.tags);
if (args.urls !== undefined) body.urls = list(args.urls);
if (args.prefix !== undefined) body.prefix = args.prefix;
if (args.everything) body.everything = true;
if (args.soft) body.soft = true;

try {
  const res = await fetch(new URL("/__edge/purge", base), {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) {
    console.error(`purge: ${res.status} ${text.trim()}`);
    process.exit(1);
  }
  console.log(text.trim());
} catch (error) {
  console.error(`purge: cannot reach ${base}: ${error.message}`);
  process.exit(1);
}
