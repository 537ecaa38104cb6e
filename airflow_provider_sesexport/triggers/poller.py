"""
The shared poller behind :class:`~airflow_provider_sesexport.triggers.ses_export.SesExportJobTrigger`.

One :class:`ExportJobPoller` exists per event loop and per client key (connection id, region,
``verify``, ``botocore_config``; the endpoint comes from the connection). It owns the only aiobotocore
client for that key, created off the event loop when the first waiter arrives and closed when the last
one leaves. Each waited-for job is due at its own pace, at the multiples of its poll interval (the shortest
of its waiters') on the monotonic clock: a wait with a short interval does not make the others poll faster,
and waits with the same interval share their cycles whenever they started. A wait that becomes due before the
end of the poller's pause cuts the pause short. Whenever a job is due, one poll cycle checks every job due then:

* ``ListExportJobs`` filtered by ``JobStatus`` CREATED, then PROCESSING (every page): jobs in those
  lists are still running, whatever their number;
* ``GetExportJob`` only for due jobs missing from both lists (they finished, or vanished), a few at a
  time; when listing is not permitted (AccessDenied), for every due job, one at a time, rate-limited
  and jittered;
* throttling, 5xx and network errors skip the rest of a cycle, leave its jobs due and push the next
  cycle back (exponential backoff with jitter): they never end a wait.

A cycle thus costs at most 2 + extra pages + jobs that finished calls, however many waits there are. A
waiter costs one future and its entry in its job's dict, a job one due time; nothing else is allocated
per waiting job.

What the poller reaches outside itself (the client, the clock, sleeping, randomness) comes in
:class:`PollerSeams`; tests give a loop fakes with :func:`use_seams`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from airflow_provider_sesexport._compat import get_async_client
from airflow_provider_sesexport.hooks.ses_export import (
    SesExportJobHook,
    aiter_export_jobs,
    mask_answer_urls,
    unfinished_jobs_requests,
)
from airflow_provider_sesexport.utils import aws_errors
from airflow_provider_sesexport.utils.export_job import interpret_export_job

# Internal: the triggerer's shared poller behind SesExportJobTrigger; nothing here is public API.
__all__ = []

log: logging.Logger = logging.getLogger(__name__)

#: Error codes that mean "this identity may not call ListExportJobs".
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "Forbidden"})
#: Longest pause between cycles while AWS keeps throttling.
MAX_BACKOFF_SECONDS = 300.0
#: Concurrent GetExportJob calls for jobs that left the lists.
GET_CONCURRENCY = 8
#: Seconds of float rounding tolerated when comparing clock readings with due times.
_CLOCK_SLACK = 1e-6


def _next_multiple(after: float, interval: float) -> float:
    """
    The first multiple of ``interval`` later than ``after`` (``after`` itself for a zero interval).

    Due times on the interval's grid, not ``interval`` after each check, keep the waits of one interval in one
    cycle however their subscriptions were spread.

    :param after: a clock reading.
    :param interval: seconds between checks.
    """
    if interval <= 0:
        return after
    return (math.floor((after + _CLOCK_SLACK) / interval) + 1) * interval


class ClientSpec(NamedTuple):
    """
    What identifies a shared client: everything a trigger passes to the hook.

    :param aws_conn_id: the Airflow connection (its ``endpoint_url`` and credentials come with it).
    :param region_name: AWS region.
    :param verify: SSL verification (bool or CA bundle path).
    :param botocore_config: botocore ``Config`` keyword arguments.
    """

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config_json: str

    @classmethod
    def of(
        cls,
        aws_conn_id: str | None,
        region_name: str | None,
        verify: bool | str | None,
        botocore_config: dict[str, Any] | None,
    ) -> ClientSpec:
        """Build the key; ``botocore_config`` is compared as canonical JSON."""
        return cls(
            aws_conn_id, region_name or None, verify, json.dumps(botocore_config or {}, sort_keys=True, default=str)
        )

    @property
    def botocore_config(self) -> dict[str, Any] | None:
        """The botocore config dict, or None."""
        return json.loads(self.botocore_config_json) or None


#: ``(client, close)``: an entered aiobotocore client and the coroutine function that closes it.
ClientHandle = tuple[Any, Callable[[], Awaitable[None]]]


async def open_client(spec: ClientSpec) -> ClientHandle:
    """
    Open the shared aiobotocore client for ``spec`` through the hook, so connections, roles and endpoints work.

    Credentials and the connection are loaded in a worker thread (see
    :func:`~airflow_provider_sesexport._compat.get_async_client`), not on the event loop.
    """

    def make_hook() -> SesExportJobHook:
        return SesExportJobHook(
            aws_conn_id=spec.aws_conn_id,
            region_name=spec.region_name,
            verify=spec.verify,
            config=spec.botocore_config,
        )

    loop = asyncio.get_running_loop()
    hook = await loop.run_in_executor(None, make_hook)
    context = await get_async_client(hook)
    client = mask_answer_urls(await context.__aenter__())

    async def close() -> None:
        await context.__aexit__(None, None, None)

    return client, close


class PollerSeams:
    """
    What a poller uses from outside itself; the defaults are the real ones.

    :param open_client: opens the shared client for a key (:func:`open_client`).
    :param clock: monotonic seconds (``time.monotonic``).
    :param sleep: pauses between cycles and between paced calls (``asyncio.sleep``); it must yield to the
        event loop even for a zero delay.
    :param rng: the jitter of backoff and pacing (a new ``random.Random`` by default).
    """

    # A plain class, not a dataclass: a dataclass costs a DAG file importing the sensor about a millisecond.
    __slots__ = ("clock", "open_client", "rng", "sleep")

    def __init__(
        self,
        open_client: Callable[[ClientSpec], Awaitable[ClientHandle]] = open_client,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.open_client: Callable[[ClientSpec], Awaitable[ClientHandle]] = open_client
        self.clock: Callable[[], float] = clock
        self.sleep: Callable[[float], Awaitable[None]] = sleep
        self.rng: random.Random = random.Random() if rng is None else rng


def job_event(job_id: str, job: dict[str, Any]) -> dict[str, Any] | None:
    """
    The trigger event for a GetExportJob response (:meth:`ExportJobOutcome.to_event`), or None while it runs.

    :param job_id: the job waited for.
    :param job: the GetExportJob response.
    """
    outcome = interpret_export_job(job_id, job)
    if outcome.warning:
        log.warning("%s", outcome.warning)
    return outcome.to_event() if outcome.finished else None


def error_event(job_id: str, message: str, error_code: str | None = None, **where: str | None) -> dict[str, Any]:
    """
    An ``error`` trigger event (the wait could not be carried out).

    :param job_id: the job waited for.
    :param message: what went wrong, safe to log.
    :param error_code: the AWS error code, if any.
    :param where: ``aws_conn_id`` and ``region`` the request went to, for a not-found error to name.
    """
    return {"status": "error", "job_id": job_id, "message": message, "error_code": error_code, **where}


class ExportJobPoller:
    """
    Polls SES for every job waited on through one client; see the module docstring.

    :param spec: the client key.
    :param fallback_rate: GetExportJob calls per second when listing is not permitted.
    :param seams: the client factory, clock, sleep and randomness to use (the real ones by default).
    """

    def __init__(self, spec: ClientSpec, fallback_rate: float = 5.0, seams: PollerSeams | None = None) -> None:
        self.spec = spec
        self.fallback_rate = fallback_rate
        self.seams: PollerSeams = seams or PollerSeams()
        #: job id → each waiter's future and the poll interval it asked for
        self.waiters: dict[str, dict[asyncio.Future[dict[str, Any]], float]] = {}
        #: job id → when (``seams.clock``) it is next checked
        self.due: dict[str, float] = {}
        self.client: Any = None
        self.listing_allowed: bool = True
        self.backoff_level: int = 0
        self.cycles: int = 0
        self.cycles_completed: int = 0
        self.closed: bool = False
        self._task: asyncio.Task[None] | None = None
        self._close: Callable[[], Awaitable[None]] | None = None
        #: when (``seams.clock``) the pause in progress ends; None outside a pause
        self._pause_until: float | None = None
        #: set to end the pause early (a new wait is due before its end)
        self._wake = asyncio.Event()

    # -- subscriptions --------------------------------------------------------------------------
    def subscribe(self, job_id: str, poll_interval: float) -> asyncio.Future[dict[str, Any]]:
        """
        Wait for ``job_id``: the returned future resolves to its trigger event.

        The job is first checked at the next multiple of ``poll_interval`` on the clock, at most ``poll_interval``
        seconds from now (sooner if another waiter of the same job asked for a shorter interval): a poller
        pausing for longer waits is woken to pause until then instead (a throttling backoff still holds).

        :param job_id: the export job.
        :param poll_interval: seconds between checks of this job this waiter wants (a job with several
            waiters is checked at the shortest of their intervals).
        """
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(job_id, {})[future] = poll_interval
        first_check = _next_multiple(self.seams.clock(), poll_interval)
        self.due[job_id] = min(self.due.get(job_id, first_check), first_check)
        if self._pause_until is not None and self.due[job_id] < self._pause_until - _CLOCK_SLACK:
            self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"ses-export-poller-{id(self)}")
        return future

    def unsubscribe(self, job_id: str, future: asyncio.Future[dict[str, Any]]) -> None:
        """
        Stop waiting (idempotent). When the last waiter leaves, the poller stops and closes its client.

        :param job_id: the export job.
        :param future: the future :meth:`subscribe` returned.
        """
        futures = self.waiters.get(job_id)
        if not futures or future not in futures:
            return
        del futures[future]
        if not futures:
            del self.waiters[job_id]
            self.due.pop(job_id, None)
        if not future.done():
            future.cancel()
        if not self.waiters:
            self.closed = True
            _forget(self)
            # Interrupts the pause or the cycle in flight; the task then closes the client. While the client
            # is still being opened the task is left alone: it sees ``closed`` and closes the client itself.
            if self._task is not None and self.client is not None:
                self._task.cancel()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """
        After the last waiter left: wait (at most ``timeout`` seconds) until the client is closed.

        :param timeout: seconds to wait at most.
        """
        if self._task is None or not self.closed:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            log.warning("SES export poller: the client did not close within %.0fs.", timeout)

    @property
    def waiting(self) -> int:
        """How many waits are subscribed."""
        return sum(len(f) for f in self.waiters.values())

    @property
    def interval(self) -> float:
        """The smallest interval any current waiter asked for (what backoff stretches)."""
        return min((asked for futures in self.waiters.values() for asked in futures.values()), default=0.0)

    def interval_of(self, job_id: str) -> float:
        """
        Seconds between checks of ``job_id``: the smallest interval its waiters asked for.

        :param job_id: the export job.
        """
        return min(self.waiters.get(job_id, {}).values(), default=0.0)

    def next_due(self) -> float:
        """When (``seams.clock``) the next job is due; now if no job is waiting."""
        return min((self.due.get(job_id, -math.inf) for job_id in self.waiters), default=self.seams.clock())

    def due_jobs(self, now: float) -> list[str]:
        """
        The waited-for jobs due at ``now`` (a job with no due time, e.g. set up by hand, is due).

        :param now: the cycle's time (``seams.clock``).
        """
        return [job_id for job_id in self.waiters if self.due.get(job_id, -math.inf) <= now + _CLOCK_SLACK]

    def _checked(self, job_ids: list[str], at: float) -> None:
        """Schedule the next check of ``job_ids``, checked by the cycle that started ``at``, on their grid."""
        for job_id in job_ids:
            if job_id in self.waiters:
                self.due[job_id] = _next_multiple(at, self.interval_of(job_id))

    # -- resolution -----------------------------------------------------------------------------
    def _resolve(self, job_id: str, event: dict[str, Any]) -> None:
        for future in self.waiters.get(job_id, ()):
            if not future.done():
                future.set_result(event)

    def _resolve_all(self, make_event: Callable[[str], dict[str, Any]]) -> None:
        for job_id in list(self.waiters):
            self._resolve(job_id, make_event(job_id))

    # -- the loop -------------------------------------------------------------------------------
    async def _run(self) -> None:
        clock = self.seams.clock
        try:
            self.client, self._close = await self.seams.open_client(self.spec)
        except Exception as exc:
            message, code = f"Could not create the SES client: {aws_errors.describe(exc)}", aws_errors.error_code(exc)
            log.error(message)
            self._resolve_all(lambda job_id: error_event(job_id, message, code))
            self.closed = True
            _forget(self)
            return
        try:
            not_before = clock()  # no cycle before this (the backoff after a failed one)
            while not self.closed:
                await self._pause_until_due(max(self.next_due(), not_before))
                started = clock()
                due = self.due_jobs(started) if started + _CLOCK_SLACK >= not_before else []
                if not due:  # woken for a new wait, or the job that was due left: pause until the next one is
                    continue
                if await self.run_cycle(due):
                    self._checked(due, started)
                else:  # cut short: its jobs stay due, for the next, slower cycle
                    not_before = started + self._next_delay()
        except asyncio.CancelledError:
            if not self.closed:
                raise
        finally:
            if self._close is not None:
                try:
                    await self._close()
                except Exception as exc:  # closing must never hide a result
                    log.warning("Closing the SES client failed: %s", aws_errors.describe(exc))

    async def _pause_until_due(self, until: float) -> None:
        """
        Pause until ``until`` (``seams.clock``), or until :meth:`subscribe` wakes the poller for a wait due sooner.

        Yields to the event loop even when ``until`` is now.
        """
        self._wake.clear()
        self._pause_until = until
        pause = asyncio.ensure_future(self.seams.sleep(max(until - self.seams.clock(), 0.0)))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((pause, woken), return_when=asyncio.FIRST_COMPLETED)
            if pause.done():
                pause.result()  # a failing sleep is not swallowed
        finally:
            self._pause_until = None
            pause.cancel()
            woken.cancel()

    def _next_delay(self) -> float:
        base = self.interval
        if not self.backoff_level:
            return base
        stretched = min(MAX_BACKOFF_SECONDS, max(base, 1.0) * 2**self.backoff_level)
        return max(base, self.seams.rng.uniform(stretched / 2, stretched))

    def _slow_down(self, exc: BaseException) -> None:
        self.backoff_level = min(self.backoff_level + 1, 10)
        log.warning(
            "SES export poller: %s after botocore's retries; slowing down (next cycle in up to %.0fs).",
            aws_errors.describe(exc),
            min(MAX_BACKOFF_SECONDS, max(self.interval, 1.0) * 2**self.backoff_level),
        )

    # -- one cycle ------------------------------------------------------------------------------
    async def run_cycle(self, job_ids: list[str] | None = None) -> bool:
        """
        Check ``job_ids`` once (default: every waiting job); return whether the cycle ran to its end.

        A cycle cut short by throttling, a 5xx or a network error returns False: its jobs stay due.

        :param job_ids: the waited-for jobs to check (the ones due).
        """
        if job_ids is None:
            job_ids = list(self.waiters)
        if not self.waiters:
            return True
        self.cycles += 1
        in_flight: set[str] | None = None
        if self.listing_allowed:
            try:
                in_flight = await self._list_in_flight()
            except Exception as exc:
                code = aws_errors.error_code(exc)
                if code in ACCESS_DENIED_CODES or aws_errors.http_status(exc) == 403:
                    log.warning(
                        "SES export poller: ListExportJobs is not permitted (%s); polling each job with "
                        "GetExportJob instead (at most %.1f calls/s). Allow ses:ListExportJobs to poll in batches.",
                        aws_errors.describe(exc),
                        self.fallback_rate,
                    )
                    self.listing_allowed = False
                elif aws_errors.is_transient(exc):
                    self._slow_down(exc)
                    return False
                else:
                    message = f"ListExportJobs failed: {aws_errors.describe(exc)}"
                    log.error("SES export poller: %s", message)
                    self._resolve_all(lambda job_id: error_event(job_id, message, code))
                    return True
        if in_flight is None:
            throttled = await self._get_jobs(job_ids, paced=True)
        else:
            throttled = await self._get_jobs([job_id for job_id in job_ids if job_id not in in_flight])
        if throttled is not None:
            self._slow_down(throttled)
            return False
        self.backoff_level = 0
        self.cycles_completed += 1
        return True

    async def _list_in_flight(self) -> set[str]:
        """JobIds of every job CREATED or PROCESSING."""
        jobs = aiter_export_jobs(self.client.list_export_jobs, unfinished_jobs_requests())
        return {job["JobId"] async for job in jobs if "JobId" in job}

    async def _get_one(self, job_id: str) -> BaseException | None:
        """GetExportJob for one job and resolve its waiters if it ended; returns a transient error, if any."""
        if job_id not in self.waiters:
            return None
        try:
            job = await self.client.get_export_job(JobId=job_id)
        except Exception as exc:
            if aws_errors.is_transient(exc):
                return exc
            region = getattr(getattr(self.client, "meta", None), "region_name", None)
            message, code = aws_errors.describe(exc), aws_errors.error_code(exc)
            self._resolve(job_id, error_event(job_id, message, code, aws_conn_id=self.spec.aws_conn_id, region=region))
            return None
        event = job_event(job_id, job)
        if event is not None:
            log.info("SES export job %s: status %s", job_id, event["job_status"])
            self._resolve(job_id, event)
        return None

    async def _get_jobs(self, job_ids: list[str], paced: bool = False) -> BaseException | None:
        """
        GetExportJob for ``job_ids``; returns the transient error that should slow the next cycle, if any.

        Unpaced: ``GET_CONCURRENCY`` calls at a time. Paced (listing is not permitted, so every waited-for
        job is asked about): one call at a time, at most ``fallback_rate`` calls per second, jittered.
        Either way, throttling stops the calls: the rest wait for the next, slower cycle.

        :param job_ids: the jobs to ask about.
        :param paced: one by one at ``fallback_rate`` instead of concurrent batches.
        """
        batch = 1 if paced else GET_CONCURRENCY
        throttled: BaseException | None = None
        for start in range(0, len(job_ids), batch):
            if self.closed:
                break
            results = await asyncio.gather(*(self._get_one(j) for j in job_ids[start : start + batch]))
            errors = [r for r in results if r is not None]
            if errors:
                throttled = errors[0]
                if any(aws_errors.error_code(e) in aws_errors.THROTTLING_CODES for e in errors):
                    break  # leave the rest for the next, slower cycle
            if paced:
                spacing = 1.0 / self.fallback_rate
                await self.seams.sleep(self.seams.rng.uniform(0.5 * spacing, 1.5 * spacing))
        return throttled


# -- the registry: one poller per event loop and client key -----------------------------------------
class PollerRegistry:
    """
    One event loop's pollers, one per client key, each built with the registry's seams.

    :param seams: what the pollers use from outside themselves (the real client, clock, sleep and randomness
        by default).
    """

    def __init__(self, seams: PollerSeams | None = None) -> None:
        self.seams: PollerSeams = seams or PollerSeams()
        self.pollers: dict[ClientSpec, ExportJobPoller] = {}

    def get(self, spec: ClientSpec) -> ExportJobPoller:
        """
        The poller for ``spec``, created on first use (and again after the previous one closed).

        :param spec: the client key.
        """
        poller = self.pollers.get(spec)
        if poller is None or poller.closed:
            poller = self.pollers[spec] = ExportJobPoller(spec, seams=self.seams)
        return poller


_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PollerRegistry] = weakref.WeakKeyDictionary()


def _registry() -> PollerRegistry:
    """The running event loop's registry, created on first use."""
    loop = asyncio.get_running_loop()
    registry = _REGISTRY.get(loop)
    if registry is None:
        registry = _REGISTRY[loop] = PollerRegistry()
    return registry


def get_poller(spec: ClientSpec) -> ExportJobPoller:
    """
    The running event loop's poller for ``spec``, created on first use.

    :param spec: the client key.
    """
    return _registry().get(spec)


def current_seams() -> PollerSeams:
    """The running event loop's seams (what :func:`use_seams` set, else the real ones)."""
    return _registry().seams


def use_seams(seams: PollerSeams) -> None:
    """
    Build the running event loop's pollers from now on with ``seams`` (tests: a fake client, clock or sleep).

    Pollers already running keep theirs; other event loops are not affected.

    :param seams: the client factory, clock, sleep and randomness to use.
    """
    _registry().seams = seams


def active_pollers() -> dict[ClientSpec, ExportJobPoller]:
    """The running event loop's pollers (a copy), for tests and diagnostics."""
    registry = _REGISTRY.get(asyncio.get_running_loop())
    return dict(registry.pollers) if registry is not None else {}


def _forget(poller: ExportJobPoller) -> None:
    for registry in _REGISTRY.values():
        if registry.pollers.get(poller.spec) is poller:
            del registry.pollers[poller.spec]
