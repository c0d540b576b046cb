"""Where the SDK and CLI take the hub URL, token and container ID from."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tailhub.client import ConfigurationError, resolve_container_id, resolve_token, resolve_url
from tailhub.client._env import display_url


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


class TestResolveContainerId:
    def test_order(self) -> None:
        """Explicit, then CONTAINER_ID, then the host name (Docker's short container ID)."""
        assert resolve_container_id("x", {"CONTAINER_ID": "y"}) == "x"
        assert resolve_container_id(None, {"CONTAINER_ID": "y"}) == "y"
        assert socket.gethostname() == resolve_container_id(None, {})
