"""The SDK's public surface: one curated ``__all__``, and no server-side imports."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import tailhub.client

MODULES = ["_backoff", "_errors", "_message", "_publisher", "_requests", "_spool", "_subscriber"]


class TestPublicApi:
    @pytest.mark.parametrize("module", MODULES)
    def test_reexported(self, module: str) -> None:
        """Every public name of the SDK's modules is exported by the package."""
        names = set(importlib.import_module(f"tailhub.client.{module}").__all__)
        assert names - set(tailhub.client.__all__) == set()

    def test_all_importable_and_documented(self) -> None:
        """Every exported name exists; every exported class and function has a docstring."""
        for name in tailhub.client.__all__:
            value = getattr(tailhub.client, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                assert value.__doc__, name

    def test_error_tree(self) -> None:
        """Every SDK error is a HubError; the usage errors are also ValueErrors."""
        errors = [
            value
            for value in (getattr(tailhub.client, n) for n in tailhub.client.__all__)
            if isinstance(value, type) and issubclass(value, Exception)
        ]
        assert all(issubclass(error, tailhub.client.HubError) for error in errors)
        assert issubclass(tailhub.client.ConfigurationError, ValueError)
        assert issubclass(tailhub.client.NoContainerError, tailhub.client.RequestError)

    def test_no_server_imports(self) -> None:
        """Importing the SDK loads nothing of the hub's side."""
        code = (
            "import sys, tailhub.client\n"
            "bad = [m for m in sys.modules if m.split('.')[:2] in "
            "(['tailhub','server'],['tailhub','core'],['tailhub','store'],"
            "['tailhub','broker'],['tailhub','config'],['tailhub','auth'])]\n"
            "print(bad)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.stdout.strip() == "[]", out.stderr
