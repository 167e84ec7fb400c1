#!/usr/bin/env python3
"""Benchmark redis-rest-gateway against direct Redis, same redis-server, same run.

    python3 bench/gateway.py            # about 4 minutes; BENCH_SECONDS=2 BENCH_RUNS=1 for a quick look

Workloads, each at 16 concurrent keep-alive connections, closed loop (a connection sends its next
request when the previous answer is in):
  get         GET of a 32-byte value                     (gateway: POST / ["GET",k])
  set         SET of a 32-byte value                     (gateway: POST / ["SET",k,v])
  pipeline10  10 GETs in one round trip                  (gateway: POST /pipeline; direct: RESP pipeline)

Three (four with webdis) columns of numbers per workload:
  gateway          the loadgen example over HTTP/1.1 to the gateway (raw per-request latencies)
  redis-benchmark  redis-benchmark straight to the same redis-server (-c 16, -P 10 for pipeline10)
  direct loadgen   the same loadgen speaking RESP straight to Redis: same tool semantics as the
                   gateway column, so its ratio isolates the gateway's own cost
  webdis           when `webdis` is installed (Debian package webdis): the same loadgen over HTTP to
                   webdis 0.1.x (C) in front of the same redis-server, GET /GET/key and
                   /SET/key/value; webdis has no pipeline endpoint, so pipeline10 has no figure
Throughput is in commands/s (for pipeline10 one request = 10 commands); p50/p99 are per round trip
in ms. Each figure is the median of BENCH_RUNS runs (default 5), the workloads interleaved.
Everything (load tools, gateway, Redis) shares this machine's CPUs: compare ratios, not absolutes.
"""

import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
WARMUP = 0.5
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
CONNECTIONS = 16
WORKLOADS = ["get", "set", "pipeline10"]
VALUE = "0123456789abcdef0123456789abcdef"  # 32 bytes, = redis-benchmark -d 32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build():
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "redis-rest-gateway", "--bins", "--example", "loadgen"],
        cwd=ROOT,
        check=True,
    )


def start_redis(port):
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(f"SET bench:key {VALUE}\r\n".encode())
                if s.recv(5) == b"+OK\r\n":
                    return proc
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("redis-server did not start")


def start_gateway(redis_port, token):
    binary = os.environ.get("GATEWAY_BIN") or str(ROOT / "target" / "release" / "redis-rest-gateway")
    env = dict(os.environ, GATEWAY_TOKEN=token)
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--redis", f"redis://127.0.0.1:{redis_port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    found = threading.Event()
    url = {}

    def drain():
        for line in proc.stderr:
            m = re.search(r"listening on (http://\S+)", line)
            if m and not found.is_set():
                url["v"] = m.group(1)
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    if not found.wait(10):
        proc.kill()
        raise RuntimeError("gateway did not start")
    return proc, url["v"]


def webdis_binary():
    return shutil.which("webdis") or ("/usr/bin/webdis" if os.path.exists("/usr/bin/webdis") else None)


def start_webdis(binary, redis_port, directory):
    """webdis with its defaults (2 threads) except the ports, in the foreground, quiet."""
    port = free_port()
    config = Path(directory) / "webdis.json"
    config.write_text(json.dumps({
        "redis_host": "127.0.0.1", "redis_port": redis_port, "redis_auth": None,
        "http_host": "127.0.0.1", "http_port": port, "threads": 2, "pool_size": 20,
        "daemonize": False, "database": 0, "verbosity": 0, "logfile": str(Path(directory) / "webdis.log"),
    }))
    proc = subprocess.Popen([binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"webdis://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("webdis did not start")


def loadgen(target, workload, token=""):
    out = subprocess.run(
        [
            str(ROOT / "target" / "release" / "examples" / "loadgen"),
            "--target", target,
            "--token", token,
            "--workload", workload,
            "--connections", str(CONNECTIONS),
            "--seconds", str(SECONDS),
            "--warmup", str(WARMUP),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    r = json.loads(out)
    if r["errors"]:
        raise RuntimeError(f"{workload} against {target}: {r['errors']} errors")
    return {"cps": r["cps"], "p50": r["p50_ms"], "p99": r["p99_ms"]}


def redis_benchmark(port, workload, expected_cps):
    # Sized to run about SECONDS, like the loadgen runs.
    pipeline = 10 if workload == "pipeline10" else 1
    test = "set" if workload == "set" else "get"
    n = max(10_000, int(expected_cps * SECONDS))
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(CONNECTIONS), "-n", str(n),
         "-d", "32", "-P", str(pipeline), "-t", test, "--csv"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith('"' + test.upper())]
    fields = [f.strip('"') for f in rows[0].split(",")]
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    return {"cps": float(fields[1]), "p50": float(fields[4]), "p99": float(fields[6])}


def main():
    build()
    token = secrets.token_hex(16)
    redis_port = free_port()
    redis = start_redis(redis_port)
    gateway, url = start_gateway(redis_port, token)
    webdis_dir = tempfile.TemporaryDirectory()
    webdis = webdis_url = None
    if webdis_binary():
        webdis, webdis_url = start_webdis(webdis_binary(), redis_port, webdis_dir.name)
    else:
        print("webdis is not installed (Debian package webdis): no webdis column", file=sys.stderr)
    started = time.time()
    results = {w: {"gateway": [], "redis-benchmark": [], "direct": [], "webdis": []} for w in WORKLOADS}
    try:
        for run in range(RUNS):
            for workload in WORKLOADS:
                results[workload]["gateway"].append(loadgen(url, workload, token))
                if webdis_url and workload != "pipeline10":
                    results[workload]["webdis"].append(loadgen(webdis_url, workload))
                direct = loadgen(f"redis://127.0.0.1:{redis_port}", workload)
                results[workload]["direct"].append(direct)
                results[workload]["redis-benchmark"].append(redis_benchmark(redis_port, workload, direct["cps"]))
            print(f"run {run + 1}/{RUNS} done ({time.time() - started:.0f} s)", file=sys.stderr)
    finally:
        for proc in (gateway, webdis, redis):
            if proc:
                proc.terminate()
                proc.wait()
        webdis_dir.cleanup()

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    print(f"# {CONNECTIONS} connections, {SECONDS:g} s per measurement, median of {RUNS} runs, "
          f"{os.cpu_count()} CPUs shared by load tools, gateway and redis-server")
    header = ("| workload | gateway cmd/s | gateway p50 / p99 ms | redis-benchmark cmd/s | redis-benchmark p50 / p99 ms "
              "| ratio gateway/redis-benchmark | direct loadgen cmd/s | direct p50 / p99 ms | ratio gateway/direct loadgen |")
    print(header)
    print("|" + "---|" * 9)
    for workload in WORKLOADS:
        g, b, d = (results[workload][k] for k in ("gateway", "redis-benchmark", "direct"))
        gc, bc, dc = med(g, "cps"), med(b, "cps"), med(d, "cps")
        requests = f" ({gc / 10:,.0f} req/s)" if workload == "pipeline10" else ""
        print(f"| {workload} | {gc:,.0f}{requests} | {med(g, 'p50'):.2f} / {med(g, 'p99'):.2f} "
              f"| {bc:,.0f} | {med(b, 'p50'):.2f} / {med(b, 'p99'):.2f} | {gc / bc:.2f} "
              f"| {dc:,.0f} | {med(d, 'p50'):.2f} / {med(d, 'p99'):.2f} | {gc / dc:.2f} |")
    if webdis_url:
        print()
        print("| workload | gateway cmd/s | webdis cmd/s | webdis p50 / p99 ms | ratio gateway/webdis |")
        print("|" + "---|" * 5)
        for workload in WORKLOADS:
            g, w = results[workload]["gateway"], results[workload]["webdis"]
            if not w:
                print(f"| {workload} | {med(g, 'cps'):,.0f} | n/a (no pipeline endpoint) | | |")
                continue
            print(f"| {workload} | {med(g, 'cps'):,.0f} | {med(w, 'cps'):,.0f} "
                  f"| {med(w, 'p50'):.2f} / {med(w, 'p99'):.2f} | {med(g, 'cps') / med(w, 'cps'):.2f} |")


if __name__ == "__main__":
    main()
