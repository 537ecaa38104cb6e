"""
Registers the session-wide leak collector (:mod:`tests.leakcheck`) and makes its check run last.

Registered from ``pytest_configure`` of this conftest, which pytest loads while collecting, i.e.
before any test runs; as a plain plugin (not a conftest) its hooks see every test of the session.
"""

from __future__ import annotations

import pytest

from tests.leakcheck import LeakCheckPlugin

PLUGIN_NAME = "sesexport-leakcheck"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(LeakCheckPlugin(), PLUGIN_NAME)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move this directory's tests to the end of the session, whatever order the others were collected in."""
    last = [item for item in items if "zz_leakcheck" in item.nodeid.split("::")[0]]
    if last:
        items[:] = [item for item in items if item not in last] + last
