// Test services: a real redis-server on a spare port and the redis-rest-gateway binary in front
// of it. Shared by the gateway conformance suite and the worker's Miniflare tests; keep the API
// stable:
//
//   freePort()                          -> Promise<number>
//   startRedis()                        -> Promise<{ port, url, stop(), start() }>
//   startGateway({ redisUrl, token })   -> Promise<{ url, token, port, stop() }>
//
// Every child process is killed by its stop(), and on process exit or SIGINT/SIGTERM whatever is
// still running is killed too, so a failed test never leaves a redis-server behind.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import path from "node:path";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Children still running, killed on exit. */
const running = new Set();

function killAll() {
  for (const child of running) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  running.clear();
}

process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    killAll();
    // Re-raise so the process still ends the way the signal asked.
    process.kill(process.pid, signal);
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawns a tracked child whose output is kept (last 200 lines) rather than left to fill a pipe. */
function spawnTracked(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  const lines = [];
  const keep = (chunk) => {
    for (const line of chunk.toString().split("\n")) {
      if (line) lines.push(line);
    }
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  child.lines = lines;
  child.on("error", () => {}); // reported through `exited` / the readiness wait
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

/** Ends a child: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
async function stopChild(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  let timer;
  const result = await Promise.race([
    child.exited,
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (result === null) {
    child.kill("SIGKILL");
    await child.exited;
  }
}

/** Sends one inline command over a fresh socket; resolves with the first reply line. */
export function redisCommand(port, line, timeoutMs = 500) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("timeout"));
    }, timeoutMs);
    socket.on("connect", () => socket.write(`${line}\r\n`));
    socket.on("data", (chunk) => {
      data += chunk.toString();
      if (data.includes("\r\n")) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data.split("\r\n")[0]);
      }
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

function redisServerBinary() {
  if (process.env.REDIS_SERVER_BIN) return process.env.REDIS_SERVER_BIN;
  return existsSync("/usr/bin/redis-server") ? "/usr/bin/redis-server" : "redis-server";
}

/**
 * Starts a throwaway redis-server (no persistence) on a spare port and waits until it answers PING.
 * `stop()` ends it; `start()` starts it again on the same port (an empty database). `args` are
 * added to redis-server's command line (e.g. `["--maxmemory", "2mb"]`).
 */
export async function startRedis({ args = [] } = {}) {
  const port = await freePort();
  let child = null;

  async function start() {
    if (child && child.exitCode === null && child.signalCode === null) return;
    child = spawnTracked(redisServerBinary(), [
      "--port", String(port),
      "--bind", "127.0.0.1",
      "--save", "",
      "--appendonly", "no",
      "--daemonize", "no",
      ...args,
    ]);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`redis-server exited before answering on port ${port}:\n${child.lines.join("\n")}`);
      }
      try {
        if ((await redisCommand(port, "PING")) === "+PONG") return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        await stopChild(child);
        throw new Error(`redis-server did not answer PING on port ${port}:\n${child.lines.join("\n")}`);
      }
      await sleep(25);
    }
  }

  async function stop() {
    await stopChild(child);
  }

  await start();
  return { port, url: `redis://127.0.0.1:${port}`, stop, start };
}

function gatewayBinary() {
  return process.env.GATEWAY_BIN || path.join(REPO_ROOT, "target", "release", "redis-rest-gateway");
}

/**
 * Starts target/release/redis-rest-gateway (or $GATEWAY_BIN) in front of `redisUrl` and waits until
 * it serves an authenticated PING. `token` defaults to a random one; `port` defaults to a spare one.
 */
export async function startGateway({ redisUrl, token = randomBytes(16).toString("hex"), port } = {}) {
  if (!redisUrl) throw new Error("startGateway needs { redisUrl }");
  const binary = gatewayBinary();
  if (!existsSync(binary)) {
    throw new Error(`${binary} not found: run \`cargo build --release -p redis-rest-gateway\` first (or set GATEWAY_BIN)`);
  }
  const listen = `127.0.0.1:${port ?? 0}`;
  const child = spawnTracked(binary, [], {
    env: { ...process.env, GATEWAY_LISTEN: listen, REDIS_URL: redisUrl, GATEWAY_TOKEN: token },
  });

  // The gateway logs "listening on http://ADDR" once bound (port 0 means the OS picked one).
  const deadline = Date.now() + 10_000;
  let url = null;
  while (!url) {
    const line = child.lines.find((l) => l.includes("listening on http://"));
    if (line) {
      url = line.match(/listening on (http:\/\/[^\s]+)/)[1];
      break;
    }
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`redis-rest-gateway did not start:\n${child.lines.join("\n")}`);
    }
    await sleep(20);
  }

  for (;;) {
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify(["PING"]),
      });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not answering yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`redis-rest-gateway did not answer at ${url}:\n${child.lines.join("\n")}`);
    }
    await sleep(20);
  }

  return {
    url,
    token,
    port: Number(new URL(url).port),
    /** The gateway's recent log lines (stderr), for failure messages. */
    logs: () => child.lines.slice(),
    stop: () => stopChild(child),
  };
}
