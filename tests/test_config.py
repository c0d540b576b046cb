"""Settings: defaults, environment and flags, and one clear line for a bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tailhub.config import (
    ConfigError,
    build_settings,
    parse_redis_url,
    redact_url,
    url_passwords,
)


class TestBuildSettings:
    def test_defaults_are_the_original_hubs(self) -> None:
        """With nothing set, the original hub's defaults apply (times in seconds here)."""
        s = build_settings({})
        assert (8080, "0.0.0.0", None, 30.0, 300.0, 100, "info") == (
            s.port,
            s.host,
            s.auth_token,
            s.heartbeat_interval,
            s.session_timeout,
            s.max_sessions,
            s.log_level,
        )

    def test_milliseconds_and_units(self) -> None:
        """Times are milliseconds like the original; units are accepted too."""
        s = build_settings(
            {
                "heartbeat_interval": ("1500", False),
                "retention_age": ("2d", False),
                "max_message_size": ("64KiB", False),
            }
        )
        assert (1.5, 172800.0, 65536) == (s.heartbeat_interval, s.retention_age, s.max_message_size)

    @pytest.mark.parametrize(
        ("name", "value", "words"),
        [
            ("port", "abc", "PORT"),
            ("port", "70000", "PORT"),
            ("max_sessions", "-1", "MAX_SESSIONS"),
            ("max_sessions", "0", "MAX_SESSIONS"),
            ("heartbeat_interval", "soon", "HEARTBEAT_INTERVAL"),
            ("session_timeout", "0", "SESSION_TIMEOUT"),
            ("log_level", "loud", "LOG_LEVEL"),
            ("max_message_size", "big", "TAILHUB_MAX_MESSAGE_SIZE"),
            ("history", "postgres", "TAILHUB_HISTORY"),
        ],
    )
    def test_bad_value_names_the_variable(self, name: str, value: str, words: str) -> None:
        """A bad value raises ConfigError naming the environment variable."""
        with pytest.raises(ConfigError, match=words):
            build_settings({name: (value, False)})

    def test_secret_is_not_echoed(self) -> None:
        """An AUTH_TOKEN never appears in an error (it cannot be invalid, but stays hidden)."""
        s = build_settings({"auth_token": ("s3cret", False)})
        assert "s3cret" == s.auth_token


def run_serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("PORT", "AUTH_TOKEN")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "tailhub", "serve", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class TestServeStartUp:
    def test_bad_env_stops_start_up(self, tmp_path: Path) -> None:
        """PORT=abc stops start-up with one line naming PORT and a non-zero status."""
        result = run_serve({"PORT": "abc", "TAILHUB_DATA_DIR": str(tmp_path)})
        assert 0 != result.returncode
        lines = result.stderr.strip().splitlines()
        assert 1 == len(lines)
        assert "PORT" in lines[0]
        assert "Traceback" not in result.stderr

    def test_flag_wins_over_env(self, tmp_path: Path) -> None:
        """A bad flag is reported even when the variable is good: the flag wins."""
        result = run_serve(
            {"MAX_SESSIONS": "5", "TAILHUB_DATA_DIR": str(tmp_path)}, "--max-sessions", "-3"
        )
        assert 0 != result.returncode
        assert "--max-sessions" in result.stderr
        assert "MAX_SESSIONS" in result.stderr


class TestRedisSettings:
    def test_a_redis_url_and_workers(self) -> None:
        """--redis takes redis://, rediss:// and redis+cluster:// URLs; workers need it."""
        s = build_settings({"redis_url": ("redis://h:6379/0", True), "workers": ("3", True)})
        assert ("redis://h:6379/0", 3) == (s.redis_url, s.workers)
        assert (None, 1) == (build_settings({}).redis_url, build_settings({}).workers)
        cluster = build_settings({"redis_url": ("rediss+cluster://h:7000", False)})
        assert "rediss+cluster://h:7000" == cluster.redis_url

    def test_a_unix_socket_url(self) -> None:
        """unix:///path?db=N names a Unix socket; without a path there is nothing to reach."""
        url = "unix:///run/redis/redis.sock?db=2"
        assert url == build_settings({"redis_url": (url, True)}).redis_url
        with pytest.raises(ConfigError, match="for a Unix socket"):
            build_settings({"redis_url": ("unix://", True)})

    def test_the_engine_is_given_what_redis_py_reads(self) -> None:
        """One check for settings and engine: waitaof is the hub's, +cluster names Cluster."""
        target = parse_redis_url("unix:///run/r.sock?db=2&waitaof=1&password=p")
        assert ("unix:///run/r.sock?db=2&password=p", False, True, True) == (
            target.url,
            target.cluster,
            target.unix,
            target.wait_aof,
        )
        cluster = parse_redis_url("rediss+cluster://:p@h:7000")
        assert ("rediss://:p@h:7000", True, False) == (cluster.url, cluster.cluster, cluster.unix)
        with pytest.raises(ConfigError, match="waitaof=1, which is for one server"):
            build_settings({"redis_url": ("redis+cluster://h:7000?waitaof=1", True)})

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://user:pw-secret@h:1/0", "redis://user:***@h:1/0"),
            ("redis://h:1/0?password=pw-secret&db=1", "redis://h:1/0?password=***&db=1"),
            ("unix://:pw-secret@/run/r.sock?db=0", "unix://:***@/run/r.sock?db=0"),
            ("unix:///run/r.sock?db=0&PASSWORD=pw-secret", "unix:///run/r.sock?db=0&PASSWORD=***"),
            ("redis://h:1/0", "redis://h:1/0"),
        ],
    )
    def test_a_password_is_redacted_wherever_the_url_holds_it(self, url: str, shown: str) -> None:
        """In the user part or as a ``password`` query parameter (redis-py reads both)."""
        assert shown == redact_url(url)
        assert ("pw-secret" in url) == ("pw-secret" in url_passwords(url))

    def test_a_password_is_kept_out_of_logs_as_written_and_decoded(self) -> None:
        assert ["p w", "p+w"] == url_passwords("redis://h:1/0?password=p+w")
        assert ["p w", "p%20w"] == url_passwords("redis://:p%20w@h:1/0")

    @pytest.mark.parametrize(
        "url", ["http://user:pw-secret@h:1/0", "redis://user:pw-secret@h:port/0", "redis://"]
    )
    def test_a_bad_redis_url_is_named_without_its_password(self, url: str) -> None:
        with pytest.raises(ConfigError) as caught:
            build_settings({"redis_url": (url, True)})
        assert "--redis (also TAILHUB_REDIS_URL)" in str(caught.value)
        assert "pw-secret" not in str(caught.value)

    def test_workers_without_redis_say_why(self) -> None:
        with pytest.raises(ConfigError, match="need --redis"):
            build_settings({"workers": ("2", True)})


class TestRedisStartUp:
    def test_workers_without_redis_stop_start_up(self, tmp_path: Path) -> None:
        """--workers 2 without --redis: one line saying why, status 1."""
        result = run_serve({"TAILHUB_DATA_DIR": str(tmp_path)}, "--workers", "2")
        lines = result.stderr.strip().splitlines()
        assert (1, 1) == (result.returncode, len(lines))
        assert "--redis" in lines[0]

    def test_an_unreachable_redis_stops_start_up(self, tmp_path: Path) -> None:
        """A Redis nobody answers on: one line, naming it without its password."""
        from tests.helpers import free_port

        url = f"redis://u:pw-secret@127.0.0.1:{free_port()}/0"
        result = run_serve({"TAILHUB_DATA_DIR": str(tmp_path), "AUTH_TOKEN": "t"}, "--redis", url)
        lines = result.stderr.strip().splitlines()
        assert (1, 1) == (result.returncode, len(lines)), result.stderr
        assert "cannot reach Redis" in lines[0]
        assert "pw-secret" not in result.stderr + result.stdout
