"""Where tailhub keeps its files on this machine; shared by the hub and the CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import platformdirs

__all__ = [
    "DATA_DIR_ENV",
    "HISTORY_FILE",
    "SECRET_FILE",
    "TOKEN_FILE",
    "default_data_dir",
    "secret_path",
    "token_path",
]

DATA_DIR_ENV: Final = "TAILHUB_DATA_DIR"
TOKEN_FILE: Final = "token"
SECRET_FILE: Final = "token-secret"
HISTORY_FILE: Final = "history.db"
"""The SQLite history's file in the data directory."""


def default_data_dir() -> Path:
    """``$TAILHUB_DATA_DIR``, else the user's data directory (``~/.local/share/tailhub``)."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("tailhub", appauthor=False))


def token_path(data_dir: Path | None = None) -> Path:
    """The file a hub without ``AUTH_TOKEN`` keeps its generated token in."""
    return (data_dir or default_data_dir()) / TOKEN_FILE


def secret_path(data_dir: Path | None = None) -> Path:
    """The file a hub without ``TAILHUB_TOKEN_SECRET`` keeps its token-signing secret in."""
    return (data_dir or default_data_dir()) / SECRET_FILE
