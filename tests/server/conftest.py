"""The browser fixtures of ``test_dashboard`` (Chromium, pages, publishers), for every
dashboard test module of this package."""

from tests.server.test_dashboard import (  # noqa: F401 - fixtures
    browser,
    dashboard,
    fast_hub,
    publisher,
    shared_dashboard,
    shared_publisher,
)
