"""
Fixtures for the fault table: time scaling, DAG builders and exception spies.

Time scaling
------------
Every row is specified in *nominal* seconds (what a user would see against real SES) and run at
``SCALE`` times that in wall-clock seconds. Everything time-related is scaled by the same factor, so
the ratios that decide the outcome (storm length vs. botocore's retry budget vs. poke interval vs.
sensor timeout) are the ones of the nominal scenario:

* fault windows (throttle storms, 5xx bursts, latency, resets) last ``nominal * SCALE`` seconds;
* the trigger poller's own backoff after a failed cycle is multiplied by ``SCALE`` too;
* botocore's exponential backoff (``rand() * min(2**attempt, 20)`` seconds) is multiplied by ``SCALE``
  by wrapping ``botocore.retries.standard.ExponentialBackoff.delay_amount`` (aiobotocore uses the same
  class), so a poke's 5 attempts span the same *fraction* of a storm as in production;
* ``poke_interval``, ``timeout`` and botocore ``connect_timeout`` / ``read_timeout`` are given as
  ``nominal * SCALE``, and the floor of every poll interval (1 s,
  :data:`~airflow_provider_sesexport.utils.validation.MIN_POLL_INTERVAL`) is scaled the same way;
* the emulator's own job lifecycle runs at its ``time_scale`` (job durations and URL lifetimes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests import leakcheck

E = TypeVar("E", bound=BaseException)

#: wall-clock seconds per nominal second (60 s storm -> 3 s).
SCALE = 0.05
#: The calls a wait makes to learn a job's status (the trigger's poller lists first).
POLL_OPERATIONS = frozenset({"GetExportJob", "ListExportJobs"})


def nominal(seconds: float) -> float:
    """Wall-clock seconds for ``seconds`` nominal seconds."""
    return seconds * SCALE


@pytest.fixture(autouse=True)
def scaled_botocore_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scale botocore's (and aiobotocore's) retry backoff by ``SCALE`` (see the module docstring)."""
    from botocore.retries import standard

    original = standard.ExponentialBackoff.delay_amount

    def delay_amount(self: Any, context: Any) -> float:
        return float(original(self, context)) * SCALE

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", delay_amount)

    # the trigger's shared poller stretches its interval after a throttled / failed cycle (floor 1 s,
    # doubling): the same duration, scaled the same way
    from airflow_provider_sesexport.triggers.poller import ExportJobPoller

    next_delay = ExportJobPoller._next_delay

    def scaled_next_delay(self: Any) -> float:
        delay = float(next_delay(self))
        return delay * SCALE if self.backoff_level else delay

    monkeypatch.setattr(ExportJobPoller, "_next_delay", scaled_next_delay)


@pytest.fixture(autouse=True)
def scaled_poll_interval_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The floor of poke_interval / waiter_delay / poll_interval: one nominal second, like every other duration."""
    from airflow_provider_sesexport.utils import validation

    monkeypatch.setattr(validation, "MIN_POLL_INTERVAL", nominal(validation.MIN_POLL_INTERVAL))


class FaultWindow:
    """
    Faults that start once the code under test is waiting (after its first GetExportJob) and lift later.

    Opening at the first poll (not before ``dag.test()``) matters: the first ``dag.test()`` of a session
    spends seconds before the first poke, long enough for a scaled storm to be over before the wait.
    """

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.opened = threading.Event()
        self.lifted = threading.Event()
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []

    def _first_poll(self) -> bool:
        while not self.stopped.is_set():
            if self.emu.stats()["operations"]["GetExportJob"]["requests"] >= 1:
                return True
            time.sleep(0.01)
        return False

    def _spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _open(
        self,
        seconds: float,
        storm: str | None,
        then: Callable[[], Any] | None,
        faults: dict[str, Any],
        outlast: Callable[[], bool] | None = None,
    ) -> None:
        if faults:
            self.emu.set_faults(**faults)
        if storm == "throttle":
            self.emu.throttle_all(seconds)
        elif storm is not None:
            self.emu.fail_all(seconds, status=int(storm.split("_")[1]))
        self.opened.set()

        def lift() -> None:
            if self.stopped.wait(seconds):
                return
            deadline = time.monotonic() + 60
            while outlast is not None and not outlast() and time.monotonic() < deadline:
                if self.stopped.wait(0.05):
                    return
            self.emu.clear_faults()
            self.lifted.set()
            if then is not None:
                then()

        self._spawn(lift)

    def open_at_poll(
        self,
        monkeypatch: pytest.MonkeyPatch,
        seconds: float,
        storm: str | None = None,
        then: Callable[[], Any] | None = None,
        poll: int = 2,
        outlast: Callable[[], bool] | None = None,
        **faults: Any,
    ) -> None:
        """
        Start faults as the sensor's ``poll``-th GetExportJob begins, lift them ``seconds`` later, then call ``then``.

        Starting at a poll (not on a timer) guarantees the faults hit the wait: a reschedule cycle under
        ``dag.test()`` costs about a second of wall clock whatever the poke interval, which at ``SCALE``
        is longer than the shorter scaled storms.

        :param seconds: how long the faults last (wall clock).
        :param storm: ``"throttle"`` (every call 429) or ``"fail_500"`` / ``"fail_503"`` for ``seconds``.
        :param then: run right after the faults lift (e.g. complete the held job).
        :param poll: which status call (GetExportJob or ListExportJobs, boto3 or aiobotocore, 1-based) opens
            the window; in deferrable mode call 1 is the sensor's own first poke and call 2 the trigger's first.
        :param outlast: keep the faults (not a storm, which the emulator times) on past ``seconds`` until this is
            true (at most 60 s more): e.g. until a whole poll has failed, which on a loaded machine, where each
            reset attempt is slow, botocore's retries could otherwise outlast.
        :param faults: emulator fault settings (``latency``, ``reset_rate``, ``error_rate``, ...).
        """
        from aiobotocore.client import AioBaseClient
        from botocore.client import BaseClient

        calls = [0]
        window = self

        def count(operation_name: str) -> None:
            if operation_name in POLL_OPERATIONS:
                calls[0] += 1
                if calls[0] == poll:
                    window._open(seconds, storm, then, faults, outlast)

        sync_call = BaseClient._make_api_call
        async_call = AioBaseClient._make_api_call

        def _make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            count(operation_name)
            return sync_call(client, operation_name, api_params)

        async def _make_async_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            count(operation_name)
            return await async_call(client, operation_name, api_params)

        monkeypatch.setattr(BaseClient, "_make_api_call", _make_api_call)
        monkeypatch.setattr(AioBaseClient, "_make_api_call", _make_async_api_call)

    def after_first_poll(self, delay: float, action: Callable[[], Any]) -> None:
        """Run ``action`` ``delay`` seconds after the code under test first polled GetExportJob."""

        def run() -> None:
            if self._first_poll() and not self.stopped.wait(delay):
                action()
                self.opened.set()

        self._spawn(run)

    def cancel(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(10)


@pytest.fixture
def fault_window(ses_export_emulator: Any) -> Iterator[FaultWindow]:
    window = FaultWindow(ses_export_emulator)
    yield window
    window.cancel()


class ExceptionSpy:
    """Records every exception raised out of the wrapped methods (then re-raises it)."""

    def __init__(self) -> None:
        self.raised: list[BaseException] = []

    def wrap(self, monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> None:
        original = getattr(cls, name)
        spy = self

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            except BaseException as exc:
                spy.raised.append(exc)
                leakcheck.record(f"exception from {cls.__name__}.{name}", f"{type(exc).__name__}: {exc}")
                raise

        monkeypatch.setattr(cls, name, wrapper)

    def of_type(self, exc_type: type[E]) -> list[E]:
        return [exc for exc in self.raised if isinstance(exc, exc_type)]


@pytest.fixture
def exception_spy() -> ExceptionSpy:
    return ExceptionSpy()


def ti_of(dr: Any, task_id: str) -> Any:
    """The task instance ``task_id`` of a DagRun."""
    return dr.get_task_instance(task_id)


@pytest.fixture
def dag_id(request: pytest.FixtureRequest) -> str:
    """A DAG id unique to the test (the session shares one metadata DB)."""
    name = request.node.name.replace("[", "__").replace("]", "").replace("-", "_")
    return f"rel_{name}"[:200]


Builder = Callable[..., Any]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on 127.0.0.1 for the session (started and stopped here)."""
    from tests.integration.conftest import start_moto_server

    server, endpoint_url = start_moto_server()
    try:
        yield endpoint_url
    finally:
        server.stop()
