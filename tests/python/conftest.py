"""Fixtures for the gateway conformance suite: a real redis-server on a spare port and the
built redis-rest-gateway binary in front of it, both killed at the end of the session."""

import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import threading
import time

import pytest
from upstash_redis import Redis

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(7) == b"+PONG\r\n"
    except OSError:
        return False


def _redis_server_binary() -> str:
    if os.environ.get("REDIS_SERVER_BIN"):
        return os.environ["REDIS_SERVER_BIN"]
    if os.path.exists("/usr/bin/redis-server"):
        return "/usr/bin/redis-server"
    return shutil.which("redis-server") or "redis-server"


@pytest.fixture(scope="session")
def redis_server():
    port = free_port()
    proc = subprocess.Popen(
        [_redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def tokens():
    """The gateway's tokens: two full-access ones (as during a rotation) and a read-only one."""
    return {"full": secrets.token_hex(16), "previous": secrets.token_hex(16), "readonly": secrets.token_hex(16)}


@pytest.fixture(scope="session")
def gateway(redis_server, tokens):
    """Yields (url, token) of a running gateway; it also accepts the other `tokens`."""
    binary = os.environ.get("GATEWAY_BIN") or str(REPO_ROOT / "target" / "release" / "redis-rest-gateway")
    if not os.path.exists(binary):
        pytest.fail(f"{binary} not found: run `cargo build --release -p redis-rest-gateway` first")
    token = tokens["full"]
    env = dict(
        os.environ,
        GATEWAY_TOKEN=f"{token},{tokens['previous']}",
        GATEWAY_READONLY_TOKEN=tokens["readonly"],
        GATEWAY_LISTEN="127.0.0.1:0",
        REDIS_URL=redis_server,
    )
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found = threading.Event()
    state = {"url": None, "lines": []}

    def drain():
        # Keep reading so the gateway never blocks on a full pipe.
        for line in proc.stderr:
            state["lines"].append(line.rstrip())
            if "listening on http://" in line and not found.is_set():
                state["url"] = line.split("listening on ", 1)[1].split()[0]
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not found.wait(10):
            raise RuntimeError("gateway did not start:\n" + "\n".join(state["lines"]))
        yield state["url"], token
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=["base64", None], ids=["base64", "plain"])
def encoding(request):
    return request.param


@pytest.fixture
def redis(gateway, encoding):
    url, token = gateway
    return Redis(url=url, token=token, rest_encoding=encoding, rest_retries=0, allow_telemetry=False)


@pytest.fixture
def key(encoding, request):
    """Keys unique to the test and the encoding mode."""
    prefix = f"py:{encoding}:{request.node.originalname}:"
    return lambda name: prefix + name
