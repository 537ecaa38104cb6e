"""
pytest fixtures, registered through this distribution's ``pytest11`` entry point ``ses_export_emulator``.

* ``ses_export_emulator``: function-scoped, started on a free 127.0.0.1 port, ``time_scale=0.01``,
  with ``AIRFLOW_CONN_AWS_DEFAULT``, ``AWS_DEFAULT_REGION`` and dummy ``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` set for the test. Tune it with
  ``@pytest.mark.ses_export_emulator(time_scale=0.1, seed=3, ...)`` (any
  :class:`~ses_export_emulator.SesExportEmulator` option) on a test, a class or a module
  (``pytestmark``); the markers add up, the one closest to the test winning an option they share.
  ``conn_id="ses_emu"`` points that Airflow connection at the emulator instead of ``aws_default``.
* ``ses_export_emulator_session``: one emulator for the session (same defaults, env set for the session).
* ``ses_export_emulator_factory``: ``factory(**options)`` starts more emulators; all stop at teardown.
  The environment is not touched unless ``conn_id=`` is given (else use ``emu.airflow_conn_json()``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ses_export_emulator.control import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, SesExportEmulator

FIXTURE_DEFAULTS: dict[str, Any] = {"port": 0, "seed": 0, "time_scale": 0.01}


def pytest_configure(config: pytest.Config) -> None:
    """
    Register the ``ses_export_emulator`` marker.

    :param config: the pytest config.
    """
    config.addinivalue_line("markers", "ses_export_emulator(**options): options for the ses_export_emulator fixture")


def _env(emu: SesExportEmulator, conn_id: str = "aws_default") -> dict[str, str]:
    """
    Environment pointing an Airflow connection and boto3 at ``emu``.

    :param emu: a started emulator.
    :param conn_id: the Airflow connection.
    """
    return {
        f"AIRFLOW_CONN_{conn_id.upper()}": emu.airflow_conn_json(),
        "AWS_DEFAULT_REGION": emu.region,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
    }


@pytest.fixture
def ses_export_emulator_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., SesExportEmulator]]:
    """Start emulators with ``factory(conn_id=None, **options)``; they stop at teardown."""
    started: list[SesExportEmulator] = []

    def factory(conn_id: str | None = None, **options: Any) -> SesExportEmulator:
        emu = SesExportEmulator(**{**FIXTURE_DEFAULTS, **options})
        started.append(emu.start())
        if conn_id is not None:
            for key, value in _env(emu, conn_id).items():
                monkeypatch.setenv(key, value)
        return emu

    yield factory
    for emu in started:
        emu.stop()


@pytest.fixture
def ses_export_emulator(
    request: pytest.FixtureRequest, ses_export_emulator_factory: Callable[..., SesExportEmulator]
) -> SesExportEmulator:
    """An emulator for one test, with Airflow's ``aws_default`` (or the markers' ``conn_id``) pointed at it."""
    options: dict[str, Any] = {"conn_id": "aws_default"}
    for marker in reversed(list(request.node.iter_markers("ses_export_emulator"))):  # the closest last: it wins
        options.update(marker.kwargs)
    return ses_export_emulator_factory(**options)


@pytest.fixture(scope="session")
def ses_export_emulator_session() -> Iterator[SesExportEmulator]:
    """One emulator for the whole session (environment set for the session, restored after)."""
    with SesExportEmulator(**FIXTURE_DEFAULTS) as emu:
        env = _env(emu)
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield emu
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
