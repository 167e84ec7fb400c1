"""Conformance of redis-rest-gateway with the official upstash-redis (PyPI) client, in its default
mode (base64 responses) and with rest_encoding=None, against a real redis-server.

    cargo build --release -p redis-rest-gateway
    pip install -r tests/python/requirements.txt
    python -m pytest tests/python -q
"""

import asyncio

import pytest
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis
from upstash_redis.errors import UpstashError

INCR_ON_STRING = "ERR value is not an integer or out of range"


def test_set_nx_px_ex_and_get(redis, key):
    assert redis.set(key("nx"), "first", nx=True, px=60_000) is True
    assert redis.set(key("nx"), "second", nx=True, px=60_000) is False
    assert redis.get(key("nx")) == "first"
    assert redis.set(key("ex"), "v", ex=100) is True
    assert redis.get(key("ex")) == "v"
    assert redis.get(key("missing")) is None


def test_ttl_and_pttl(redis, key):
    redis.set(key("t"), "v", ex=100)
    assert 90 < redis.ttl(key("t")) <= 100
    assert 90_000 < redis.pttl(key("t")) <= 100_000
    assert redis.ttl(key("absent")) == -2
    redis.set(key("forever"), "v")
    assert redis.ttl(key("forever")) == -1


def test_getex(redis, key):
    redis.set(key("g"), "value")
    assert redis.getex(key("g"), ex=50) == "value"
    assert 40 < redis.ttl(key("g")) <= 50


def test_mget(redis, key):
    redis.set(key("a"), "one")
    redis.set(key("b"), "two")
    assert redis.mget(key("a"), key("absent"), key("b")) == ["one", None, "two"]


def test_incr_and_the_error_on_a_string(redis, key):
    assert redis.incr(key("n")) == 1
    assert redis.incrby(key("n"), 41) == 42
    redis.set(key("s"), "not a number")
    with pytest.raises(UpstashError, match=INCR_ON_STRING):
        redis.incr(key("s"))


def test_numbers_are_sent_literally(redis, key):
    redis.set(key("f"), 1.5)
    assert redis.get(key("f")) == "1.5"
    assert redis.incrbyfloat(key("f"), 0.25) == 1.75


def test_unicode_values(redis, key):
    value = "héllo wörld — 日本語 🎉 \x00 tab\t quote\" backslash\\"
    redis.set(key("u"), value)
    assert redis.get(key("u")) == value
    assert redis.strlen(key("u")) == len(value.encode("utf-8"))


def test_binary_like_values(redis, key):
    value = "".join(chr(i) for i in range(256))
    redis.set(key("bin"), value)
    assert redis.get(key("bin")) == value


def test_hset_hgetall(redis, key):
    assert redis.hset(key("h"), values={"field": "value", "other": "ünï"}) == 2
    assert redis.hgetall(key("h")) == {"field": "value", "other": "ünï"}
    assert redis.hgetall(key("none")) == {}


def test_pipeline_with_a_failing_item(redis, key):
    redis.set(key("str"), "abc")
    pipe = redis.pipeline()
    pipe.set(key("p"), "v")
    pipe.incr(key("str"))
    pipe.get(key("p"))
    # The client raises on the first item that carries an error.
    with pytest.raises(UpstashError, match=INCR_ON_STRING):
        pipe.exec()
    # The items around it still ran, in order.
    assert redis.get(key("p")) == "v"

    pipe = redis.pipeline()
    pipe.set(key("p2"), "1")
    pipe.incr(key("p2"))
    pipe.get(key("p2"))
    assert pipe.exec() == [True, 2, "2"]


def test_multi_exec(redis, key):
    tx = redis.multi()
    tx.set(key("tx"), "1")
    tx.incr(key("tx"))
    tx.get(key("tx"))
    assert tx.exec() == [True, 2, "2"]


def test_multi_exec_runtime_error(redis, key):
    redis.set(key("s"), "abc")
    tx = redis.multi()
    tx.incr(key("s"))
    tx.set(key("after"), "yes")
    with pytest.raises(UpstashError, match=INCR_ON_STRING):
        tx.exec()
    # A runtime error does not roll back the rest of the transaction (that is Redis's semantics).
    assert redis.get(key("after")) == "yes"


def evalsha_with_fallback(redis, script, sha, keys, args):
    """What a script helper does: EVALSHA, and EVAL when the server does not know the script."""
    try:
        return redis.evalsha(sha, keys=keys, args=args)
    except UpstashError as error:
        if "NOSCRIPT" not in str(error):
            raise
        return redis.eval(script, keys=keys, args=args)


def test_eval_and_evalsha_with_the_noscript_fallback(redis, key, encoding):
    assert redis.eval("return ARGV[1] .. KEYS[1]", keys=[key("k")], args=["v-"]) == "v-" + key("k")
    script = f"return redis.call('INCRBY', KEYS[1], ARGV[1]) -- {encoding}"
    sha = redis.script_load(script)
    assert redis.script_flush() is True
    with pytest.raises(UpstashError, match="NOSCRIPT"):
        redis.evalsha(sha, keys=[key("c")], args=["5"])
    assert evalsha_with_fallback(redis, script, sha, [key("c")], ["5"]) == 5
    assert redis.evalsha(sha, keys=[key("c")], args=["2"]) == 7
    sha2 = redis.script_load("return {1, 'two', false}")
    assert redis.evalsha(sha2) == [1, "two", None]


def test_concurrent_transactions_on_one_counter(gateway, encoding, key):
    url, token = gateway
    counter = key("counter")
    n = 150

    async def main():
        client = AsyncRedis(url=url, token=token, rest_encoding=encoding, rest_retries=0, allow_telemetry=False)

        async def one():
            tx = client.multi()
            tx.incr(counter)
            tx.get(counter)
            return await tx.exec()

        try:
            return await asyncio.gather(*(one() for _ in range(n))), await client.get(counter)
        finally:
            await client.close()

    results, final = asyncio.run(main())
    for incremented, read in results:
        assert int(read) == incremented  # nothing interleaved between INCR and GET
    assert sorted(r[0] for r in results) == list(range(1, n + 1))
    assert final == str(n)


def test_refused_commands(redis, key):
    for command in (["BLPOP", key("q"), "1"], ["SUBSCRIBE", "c"], ["SELECT", "1"], ["MULTI"]):
        with pytest.raises(UpstashError, match="not supported by the REST gateway"):
            redis.execute(command)
    assert redis.ping() == "PONG"


def test_bad_token(gateway):
    url, _ = gateway
    with pytest.raises(UpstashError, match="Unauthorized"):
        Redis(url=url, token="wrong", rest_retries=0, allow_telemetry=False).get("x")
