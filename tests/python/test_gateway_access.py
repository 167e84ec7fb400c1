"""Through the official upstash-redis client: server administration is refused while FLUSHDB and
SCRIPT FLUSH stay available, a read-only token reads but cannot write, and a second full token
(as during a rotation) works like the first."""

import pytest
from upstash_redis import Redis
from upstash_redis.errors import UpstashError


def client(gateway, token, encoding="base64"):
    url, _ = gateway
    return Redis(url=url, token=token, rest_encoding=encoding, rest_retries=0, allow_telemetry=False)


def test_administration_is_refused_and_redis_keeps_running(redis, key):
    for command in (["CONFIG", "SET", "maxmemory", "1mb"], ["SHUTDOWN", "NOSAVE"], ["DEBUG", "SLEEP", "0"]):
        with pytest.raises(UpstashError, match="--allow-admin-commands"):
            redis.execute(command)
    redis.set(key("alive"), "yes")
    assert redis.get(key("alive")) == "yes"
    assert "maxmemory:0" in redis.execute(["INFO", "memory"])


def test_flushdb_and_script_flush_stay_available(redis, key):
    sha = redis.script_load("return 1")
    assert redis.script_flush() is True
    assert redis.script_exists(sha) == [False]
    redis.set(key("k"), "v")
    assert redis.flushdb() is True
    assert redis.dbsize() == 0


def test_a_readonly_token_reads_but_cannot_write(gateway, tokens, redis, key):
    redis.set(key("k"), "written by the full token")
    reader = client(gateway, tokens["readonly"])
    assert reader.get(key("k")) == "written by the full token"
    assert reader.exists(key("k")) == 1
    with pytest.raises(UpstashError, match="NOPERM"):
        reader.set(key("k"), "overwritten")
    with pytest.raises(UpstashError, match="NOPERM"):
        reader.delete(key("k"))
    assert redis.get(key("k")) == "written by the full token"


def test_the_previous_token_still_works_during_a_rotation(gateway, tokens, key):
    previous = client(gateway, tokens["previous"])
    previous.set(key("k"), "v")
    assert client(gateway, tokens["full"]).get(key("k")) == "v"
    with pytest.raises(UpstashError):
        client(gateway, "not-a-token").get(key("k"))
