"""Trigger that waits on the triggerer until an SES export slot may be free, for a deferrable create task."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_sesexport.hooks.ses_export import aiter_export_jobs, unfinished_jobs_requests
from airflow_provider_sesexport.triggers import poller as _poller
from airflow_provider_sesexport.triggers.ses_export import naming_the_deferred_try
from airflow_provider_sesexport.utils import aws_errors
from airflow_provider_sesexport.utils.export_job import to_iso, utcnow
from airflow_provider_sesexport.utils.export_slots import SlotWait
from airflow_provider_sesexport.utils.validation import validate_deadline, validate_poll_interval, validate_seconds

#: Event statuses: a slot may be free (the task tries CreateExportJob again), the limit passed, or no client.
SLOT_EVENT_STATUSES = ("free", "timeout", "error")


async def count_unfinished(client: Any, source_type: str) -> int:
    """
    How many export jobs of ``source_type`` are CREATED or PROCESSING (ListExportJobs, every page).

    :param client: an aiobotocore ``sesv2`` client.
    :param source_type: ``METRICS_DATA`` or ``MESSAGE_INSIGHTS``.
    """
    return sum([1 async for _ in aiter_export_jobs(client.list_export_jobs, unfinished_jobs_requests(source_type))])


class SesExportSlotTrigger(BaseTrigger):
    """
    Wait on the triggerer until an export slot of ``source_type`` may have freed up, or ``slot_wait_timeout`` passes.

    The create operator defers here when CreateExportJob answered "too many export jobs running". The trigger
    does not create the job itself: the resumed task does, so the job's id is stored the moment it exists and
    a retried or resumed try never starts a second export. It pauses with the slot wait's backoff and counts
    the unfinished jobs of ``source_type`` (ListExportJobs), one log line per check, until the count drops below
    the highest count it saw (or cannot be read), then emits ``free``; ``timeout`` once the limit has passed.

    :param source_type: ``METRICS_DATA`` or ``MESSAGE_INSIGHTS``.
    :param started_at: ISO-8601 time of the first refused CreateExportJob (the limit counts from it).
    :param attempts: attempts refused so far.
    :param unfinished: unfinished jobs counted when the last attempt was refused (None: unknown).
    :param slot_wait_timeout: seconds the wait may last, from ``started_at``.
    :param max_pause: the largest pause between checks (the operator's ``waiter_delay``).
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region_name. If not specified then the default boto3 behaviour is used.
    :param verify: Whether or not to verify SSL certificates.
    :param botocore_config: Configuration dictionary (key-values) for botocore client.
    :param deferred_try: the ``try_number`` of the task that deferred, echoed in the event (see
        :func:`~airflow_provider_sesexport.triggers.ses_export.resumed_by_a_later_try`).
    """

    def __init__(
        self,
        *,
        source_type: str,
        started_at: str | dt.datetime,
        attempts: int,
        unfinished: int | None,
        slot_wait_timeout: float,
        max_pause: float,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        deferred_try: int | None = None,
    ) -> None:
        super().__init__()
        self.source_type = source_type
        self.started_at: str | None = to_iso(validate_deadline(started_at, "started_at"))
        self.attempts = attempts
        self.unfinished = unfinished
        self.slot_wait_timeout: float = validate_seconds(slot_wait_timeout, "slot_wait_timeout")
        self.max_pause: float = validate_poll_interval(max_pause, "max_pause")
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.deferred_try = deferred_try

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{self.__class__.__module__}.{self.__class__.__qualname__}",
            {
                "source_type": self.source_type,
                "started_at": self.started_at,
                "attempts": self.attempts,
                "unfinished": self.unfinished,
                "slot_wait_timeout": self.slot_wait_timeout,
                "max_pause": self.max_pause,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
                "deferred_try": self.deferred_try,
            },
        )

    def _slot_wait(self, seams: _poller.PollerSeams) -> SlotWait:
        """The wait, on the seams' clock (monotonic, so a wall-clock jump does not end it)."""
        now, mono = utcnow(), seams.clock()
        return SlotWait(
            source_type=self.source_type,
            timeout=self.slot_wait_timeout,
            cap=self.max_pause,
            started_at=validate_deadline(self.started_at, "started_at"),
            attempts=self.attempts,
            clock=lambda: now + dt.timedelta(seconds=seams.clock() - mono),
            rng=seams.rng,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        seams = _poller.current_seams()
        spec = _poller.ClientSpec.of(self.aws_conn_id, self.region_name, self.verify, self.botocore_config)
        slots = self._slot_wait(seams)
        try:
            client, close = await seams.open_client(spec)
        except Exception as exc:
            yield TriggerEvent(self._event("error", slots, message=aws_errors.describe(exc)))
            return
        try:
            event = await self._wait(client, slots, seams)
        finally:
            await close()
        yield TriggerEvent(event)

    async def _wait(self, client: Any, slots: SlotWait, seams: _poller.PollerSeams) -> dict[str, Any]:
        highest = self.unfinished
        pause = slots.pause()  # after the attempt the task just saw refused
        while pause is not None:
            await seams.sleep(pause)
            try:
                unfinished: int | None = await count_unfinished(client, self.source_type)
            except Exception as exc:
                self.log.warning("Could not count the unfinished SES export jobs: %s", aws_errors.describe(exc))
                unfinished = None
            if unfinished is None or highest is None or unfinished < highest:
                self.log.info(
                    "SES export slot check: %s; a slot may be free, the task tries CreateExportJob again.",
                    slots.describe(unfinished, slots.attempts + 1),
                )
                return self._event("free", slots, unfinished=unfinished)
            highest = max(highest, unfinished)
            pause = slots.next_pause()
            if pause is not None:
                self.log.info(
                    "No free SES export slot: %s; next check in %.1f s (%.0f s of slot_wait_timeout left).",
                    slots.describe(unfinished),
                    pause,
                    slots.seconds_left(),
                )
        return self._event("timeout", slots)

    def _event(self, status: str, slots: SlotWait, **extra: Any) -> dict[str, Any]:
        event = {
            "status": status,
            "source_type": self.source_type,
            "started_at": to_iso(slots.started_at),
            "attempts": slots.attempts,
            **extra,
        }
        return naming_the_deferred_try(event, self.deferred_try)
