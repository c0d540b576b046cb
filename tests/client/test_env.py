"""Where the SDK and CLI take the hub URL, token and container ID from."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tailhub.client import (
    ConfigurationError,
    read_token_file,
    resolve_container_id,
    resolve_token,
    resolve_url,
    resolve_urls,
)
from tailhub.client._env import display_url, resolve_token_file


class TestResolveUrl:
    def test_explicit_wins(self) -> None:
        """An explicit URL wins over both variables."""
        env = {"TAILHUB_URL": "ws://a:1", "WS_SERVER": "ws://b:2"}
        assert resolve_url("ws://c:3", env) == "ws://c:3"

    def test_tailhub_url_before_legacy(self) -> None:
        """TAILHUB_URL wins over the original wrapper's WS_SERVER."""
        assert resolve_url(None, {"TAILHUB_URL": "ws://a:1", "WS_SERVER": "ws://b:2"}) == "ws://a:1"

    def test_legacy_ws_server(self) -> None:
        """WS_SERVER alone is used."""
        assert resolve_url(None, {"WS_SERVER": "ws://b:2"}) == "ws://b:2"

    def test_default(self) -> None:
        """With nothing set, the original default."""
        assert resolve_url(None, {}) == "ws://localhost:8080"

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("http://h:8080", "ws://h:8080"),
            ("https://h/hub", "wss://h/hub"),
            ("h:9000", "ws://h:9000"),
            ("  ws://h:1  ", "ws://h:1"),
        ],
    )
    def test_normalised(self, given: str, expected: str) -> None:
        """HTTP schemes become WebSocket schemes; a bare host:port gets ws://."""
        assert expected == resolve_url(given, {})

    @pytest.mark.parametrize("bad", ["ftp://h", "ws://", "ws://h:notaport"])
    def test_invalid(self, bad: str) -> None:
        """A URL that cannot be a hub is a ConfigurationError naming it."""
        with pytest.raises(ConfigurationError, match="invalid hub URL"):
            resolve_url(bad, {})

    def test_display_hides_query(self) -> None:
        """A URL shown in an error never carries its query (a ?token=)."""
        assert display_url("ws://user:pw@h:1/?token=secret") == "ws://h:1/"


class TestResolveUrls:
    def test_one(self) -> None:
        """One URL is a list of one, normalised as ever."""
        assert resolve_urls("h:1", {}) == ("ws://h:1",)

    def test_comma_separated(self) -> None:
        """A comma-separated value names several hubs, in order, each normalised."""
        env = {"TAILHUB_URL": "ws://hub1:8080, http://hub2:8080 ,hub3:9"}
        assert resolve_urls(None, env) == ("ws://hub1:8080", "ws://hub2:8080", "ws://hub3:9")

    def test_sequence(self) -> None:
        """A sequence names one URL per element; it wins over the environment."""
        env = {"TAILHUB_URL": "ws://other:1"}
        assert resolve_urls(["ws://a:1", "b:2"], env) == ("ws://a:1", "ws://b:2")

    def test_resolve_url_is_the_first(self) -> None:
        """resolve_url, given a list, answers its first URL."""
        assert resolve_url("ws://a:1,ws://b:2", {}) == "ws://a:1"

    @pytest.mark.parametrize(
        ("given", "words"),
        [
            ("ws://a:1,,ws://b:2", "URL 2 is empty"),
            ("ws://a:1,", "URL 2 is empty"),
            (",ws://a:1", "URL 1 is empty"),
            ("ws://a:1, ,ws://b:2", "URL 2 is empty"),
        ],
    )
    def test_empty_element(self, given: str, words: str) -> None:
        """An empty element (doubled, leading or trailing comma) is refused, and named."""
        with pytest.raises(ConfigurationError, match=words):
            resolve_urls(given, {})

    def test_bad_scheme_named(self) -> None:
        """An element that is no WebSocket URL is refused with its place in the list; the
        message shows no token from any element."""
        with pytest.raises(ConfigurationError) as caught:
            resolve_urls("ws://a:1/?token=secret,ftp://b:2", {})
        assert "'ftp://b:2' (hub URL 2 of 2): expected ws://HOST:PORT" in str(caught.value)
        assert "secret" not in str(caught.value)
        with pytest.raises(ConfigurationError, match="URL 2 is empty") as empty:
            resolve_urls("ws://a:1/?token=secret,,", {})
        assert "secret" not in str(empty.value)


class TestResolveToken:
    def test_order(self, tmp_path: Path) -> None:
        """Explicit, then TAILHUB_TOKEN, then the token file."""
        file = tmp_path / "token"
        file.write_text("from-file\n")
        env = {"TAILHUB_TOKEN": "from-env"}
        assert resolve_token("explicit", env, file) == "explicit"
        assert resolve_token(None, env, file) == "from-env"
        assert resolve_token(None, {}, file) == "from-file"

    def test_none(self, tmp_path: Path) -> None:
        """No token anywhere (a missing or empty file) is None."""
        assert resolve_token(None, {}, tmp_path / "missing") is None
        (tmp_path / "empty").write_text("\n")
        assert resolve_token(None, {}, tmp_path / "empty") is None

    def test_default_file_under_data_dir(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a path, the hub's own token file under TAILHUB_DATA_DIR is read."""
        monkeypatch.setenv("TAILHUB_DATA_DIR", str(tmp_path))
        (tmp_path / "token").write_text("generated")
        assert resolve_token(None, {}) == "generated"

    def test_token_file_variable(self, tmp_path: Path) -> None:
        """TAILHUB_TOKEN_FILE names a file whose token (white space stripped) is used before
        the hub's token file; an explicit token still wins."""
        named = tmp_path / "named"
        named.write_text("  from-named-file\n")
        hubs = tmp_path / "token"
        hubs.write_text("from-hub-file")
        env = {"TAILHUB_TOKEN_FILE": str(named)}
        assert resolve_token(None, env, hubs) == "from-named-file"
        assert resolve_token("explicit", env, hubs) == "explicit"
        assert resolve_token_file(None, env) == named
        assert resolve_token_file(tmp_path / "other", env) == tmp_path / "other"
        assert resolve_token_file(None, {}) is None

    def test_token_and_token_file_variables_conflict(self, tmp_path: Path) -> None:
        """Both TAILHUB_TOKEN and TAILHUB_TOKEN_FILE: which was meant is not guessed."""
        env = {"TAILHUB_TOKEN": "t", "TAILHUB_TOKEN_FILE": str(tmp_path / "f")}
        with pytest.raises(ConfigurationError, match="both TAILHUB_TOKEN and TAILHUB_TOKEN_FILE"):
            resolve_token(None, env)
        with pytest.raises(ConfigurationError, match="both"):
            resolve_token_file(None, env)

    def test_unusable_token_files(self, tmp_path: Path) -> None:
        """A missing, empty or non-UTF-8 token file is an error naming the file."""
        missing = tmp_path / "missing"
        with pytest.raises(ConfigurationError, match=f"cannot read the token file {missing}"):
            read_token_file(missing)
        with pytest.raises(ConfigurationError, match="cannot read"):
            resolve_token(None, {"TAILHUB_TOKEN_FILE": str(missing)})
        (tmp_path / "empty").write_text(" \n")
        with pytest.raises(ConfigurationError, match="is empty"):
            read_token_file(tmp_path / "empty")
        (tmp_path / "binary").write_bytes(b"\xff\xfe")
        with pytest.raises(ConfigurationError, match="not UTF-8"):
            read_token_file(tmp_path / "binary")


class TestResolveContainerId:
    def test_order(self) -> None:
        """Explicit, then CONTAINER_ID, then the host name (Docker's short container ID)."""
        assert resolve_container_id("x", {"CONTAINER_ID": "y"}) == "x"
        assert resolve_container_id(None, {"CONTAINER_ID": "y"}) == "y"
        assert socket.gethostname() == resolve_container_id(None, {})
