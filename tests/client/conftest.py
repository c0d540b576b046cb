"""Fixtures of the SDK tests: one hub shared by the tests that never stop it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import HubProcess


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub for a whole module; tests on it use their own container IDs and never stop it."""
    process = HubProcess(tmp_path_factory.mktemp("shared") / "hub").start()
    yield process
    process.stop()


@pytest.fixture
def cid(request: pytest.FixtureRequest) -> str:
    """A container ID no other test uses."""
    return "c-" + request.node.name.replace("[", "-").replace("]", "")
