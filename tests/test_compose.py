"""docker-compose.yml: it parses, and every service, port, URL and token it refers to matches.

No Docker engine is needed: the file is read as YAML (merge keys resolved) and checked the
way compose would wire it, with the SDK's own parser for the agent's list of hub URLs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tailhub.client import resolve_urls

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
HUBS = ("hub1", "hub2")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    found: dict[str, dict[str, Any]] = document["services"]
    return found


def _after(command: list[str], flag: str, default: str | None = None) -> str | None:
    """The value following ``flag`` in an argv list, or ``default``."""
    return command[command.index(flag) + 1] if flag in command else default


def _listen_port(service: dict[str, Any]) -> int:
    return int(_after(service["command"], "--port", "8080") or "8080")


class TestCompose:
    def test_services(self, services: dict[str, dict[str, Any]]) -> None:
        """Redis, two hubs built from the repository's Dockerfile, and an agent."""
        assert {"redis", *HUBS, "agent"} == set(services)
        for name in (*HUBS, "agent"):
            assert services[name]["build"] == "."

    def test_redis_durable(self, services: dict[str, dict[str, Any]]) -> None:
        """Redis appends every write to its AOF and never evicts keys."""
        command = services["redis"]["command"]
        assert _after(command, "--appendonly") == "yes"
        assert _after(command, "--maxmemory-policy") == "noeviction"
        assert any(volume.endswith(":/data") for volume in services["redis"]["volumes"])

    def test_hubs_on_the_redis_service(self, services: dict[str, dict[str, Any]]) -> None:
        """Each hub's --redis URL names the redis service on the port it listens on."""
        redis_port = int(_after(services["redis"]["command"], "--port", "6379") or "6379")
        for name in HUBS:
            command = services[name]["command"]
            assert command[0] == "serve"
            url = urlsplit(_after(command, "--redis") or "")
            assert (url.scheme, url.hostname, url.port, url.path) == (
                "redis",
                "redis",
                redis_port,
                "/0",
            )
            assert "redis" in services[name]["depends_on"]

    def test_published_ports(self, services: dict[str, dict[str, Any]]) -> None:
        """Each hub publishes its own listen port, on distinct host ports."""
        host_ports = []
        for name in HUBS:
            (mapping,) = services[name]["ports"]
            host, container = mapping.split(":")
            assert int(container) == _listen_port(services[name])
            host_ports.append(host)
        assert len(set(host_ports)) == len(HUBS)

    def test_agent_urls_name_the_hubs(self, services: dict[str, dict[str, Any]]) -> None:
        """The agent's --url parses as a list of hub URLs, each a hub service on its port."""
        agent = services["agent"]
        assert agent["command"][0] == "run"
        urls = resolve_urls(_after(agent["command"], "--url"), {})
        assert [urlsplit(url).hostname for url in urls] == list(HUBS)
        for url in urls:
            name = urlsplit(url).hostname
            assert name is not None
            assert urlsplit(url).port == _listen_port(services[name])
        assert set(HUBS) <= set(agent["depends_on"])
        assert "--" in agent["command"]

    def test_one_token(self, services: dict[str, dict[str, Any]]) -> None:
        """Every hub has the same AUTH_TOKEN, from one variable, and the agent presents it."""
        tokens = {services[name]["environment"]["AUTH_TOKEN"] for name in HUBS}
        assert len(tokens) == 1
        (token,) = tokens
        assert re.fullmatch(r"\$\{TAILHUB_AUTH_TOKEN:\?[^}]+\}", token)
        assert services["agent"]["environment"]["TAILHUB_TOKEN"] == token

    def test_no_stray_interpolation(self) -> None:
        """Every $ is compose's own ${VAR...} or an escaped $$ meant for the shell."""
        text = "\n".join(
            line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#")
        )
        stray = re.findall(r"\$(?!\$|\{)", text.replace("$$", ""))
        assert stray == []
        assert set(re.findall(r"\$\{(\w+)", text)) == {"TAILHUB_AUTH_TOKEN"}
