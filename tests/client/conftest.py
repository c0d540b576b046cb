"""Fixtures of the SDK tests: one hub shared by the tests that never stop it."""

from __future__ import annotations

import pytest


@pytest.fixture
def cid(request: pytest.FixtureRequest) -> str:
    """A container ID no other test uses."""
    return "c-" + request.node.name.replace("[", "-").replace("]", "")
