"""
Waiting for a free export slot: SES refuses CreateExportJob while too many export jobs are unfinished.

Real SES limits unfinished export jobs per source type (about 20) and answers one more with 400
``LimitExceededException`` (:func:`~airflow_provider_sesexport.utils.aws_errors.means_no_free_slot`). The
create operator then waits instead of failing: jittered exponential backoff, capped, one log line per attempt,
for at most ``slot_wait_timeout`` seconds since the first refusal. The same :class:`SlotWait` runs in a worker
(the operator retries CreateExportJob) and on the triggerer
(:class:`~airflow_provider_sesexport.triggers.export_slot.SesExportSlotTrigger` watches the unfinished jobs).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable

from airflow_provider_sesexport.exceptions import SesExportNoSlotError
from airflow_provider_sesexport.utils.export_job import to_iso, utcnow

# Internal: nothing here is public API (import what you need from the hooks, operators, sensors and triggers).
__all__ = []

#: Pause after the first refused attempt, in seconds; every later pause doubles, up to the cap.
FIRST_PAUSE = 2.0


def backoff(attempt: int, cap: float, rng: random.Random) -> float:
    """
    The pause after the ``attempt``-th refused attempt: ``FIRST_PAUSE`` doubling per attempt, capped, jittered.

    The ceiling is ``min(cap, FIRST_PAUSE * 2 ** (attempt - 1))``; the pause is drawn uniformly
    from its upper half, so waiting tasks spread out without ever pausing less than half the ceiling.

    :param attempt: how many attempts were refused so far (>= 1).
    :param cap: the largest ceiling, in seconds (the operator's ``waiter_delay``, at least 1 s as
        :func:`~airflow_provider_sesexport.utils.validation.validate_poll_interval` checks).
    :param rng: the jitter's source.
    """
    ceiling = min(cap, FIRST_PAUSE * 2.0 ** min(max(attempt, 1) - 1, 30))
    return rng.uniform(ceiling / 2, ceiling)


class SlotWait:
    """
    One task's wait for a free slot: the attempts so far and the limit, carried across deferrals.

    :param source_type: ``METRICS_DATA`` or ``MESSAGE_INSIGHTS`` (the limit is per source type).
    :param timeout: ``slot_wait_timeout``: seconds the wait may last, from the first refusal.
    :param cap: the largest pause between attempts (``waiter_delay``).
    :param started_at: when the first attempt was refused (None until then).
    :param attempts: attempts refused so far (CreateExportJob calls, and the triggerer's checks).
    :param clock: the current UTC time.
    :param sleep: pauses a worker's wait.
    :param rng: the jitter's source (a new ``random.Random`` by default).
    """

    # A plain class, not a dataclass: a dataclass costs a DAG file importing the operators about a millisecond.
    def __init__(
        self,
        source_type: str,
        timeout: float,
        cap: float,
        started_at: dt.datetime | None = None,
        attempts: int = 0,
        clock: Callable[[], dt.datetime] = utcnow,
        sleep: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.source_type: str = source_type
        self.timeout: float = timeout
        self.cap: float = cap
        self.started_at: dt.datetime | None = started_at
        self.attempts: int = attempts
        self.clock: Callable[[], dt.datetime] = clock
        self.sleep: Callable[[float], object] = sleep
        self.rng: random.Random = random.Random() if rng is None else rng

    def seconds_left(self) -> float:
        """Seconds until ``slot_wait_timeout`` runs out (the full timeout before the first refusal)."""
        if self.started_at is None:
            return self.timeout
        elapsed = (self.clock() - self.started_at).total_seconds()
        return max(0.0, self.timeout - elapsed)

    def next_pause(self) -> float | None:
        """Count one refused attempt; return the pause before the next one, or None once the limit is reached."""
        if self.started_at is None:
            self.started_at = self.clock()
        self.attempts += 1
        return self.pause()

    def pause(self) -> float | None:
        """The pause after the attempts refused so far (jittered anew), or None once the limit is reached."""
        left = self.seconds_left()
        if left <= 0:
            return None
        return min(backoff(self.attempts, self.cap, self.rng), left)

    def describe(self, unfinished: int | None, attempt: int | None = None) -> str:
        """
        What an attempt found, for its log line: how many jobs are unfinished (if known), and the attempt number.

        :param unfinished: unfinished jobs of the source type (ListExportJobs), None when unknown.
        :param attempt: the attempt's number (default: the last refused one).
        """
        running = "an unknown number of" if unfinished is None else str(unfinished)
        number = self.attempts if attempt is None else attempt
        return f"{running} unfinished {self.source_type} export jobs (attempt {number})"

    def exhausted(self) -> SesExportNoSlotError:
        """The error once ``slot_wait_timeout`` is used up: it names the parameter and what to do."""
        return SesExportNoSlotError(
            f"No free SES export slot for a {self.source_type} export: CreateExportJob was refused with "
            f"LimitExceededException (too many unfinished export jobs) on every one of {self.attempts} attempts "
            f"since {to_iso(self.started_at)}, and slot_wait_timeout ({self.timeout:g} s) is used up. Raise "
            "slot_wait_timeout to wait longer, spread the exports out, or cancel unfinished export jobs "
            "(SesExportJobHook.cancel_export_job)."
        )
