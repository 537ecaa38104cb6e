"""
Helpers of SesCreateExportJobOperator: waiting for a free export slot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.utils import aws_errors
from airflow_provider_sesexport.utils.export_slots import SlotWait
from airflow_provider_sesexport.utils.validation import CreateExportJobRequest

log = logging.getLogger(__name__)


def source_type_of(request: dict[str, Any]) -> str:
    """
    The ``ExportSourceType`` of a validated CreateExportJob request.

    :param request: the request.
    """
    return "METRICS_DATA" if "MetricsDataSource" in request["ExportDataSource"] else "MESSAGE_INSIGHTS"


def count_unfinished(hook: SesExportJobHook, source_type: str) -> int | None:
    """
    How many export jobs of ``source_type`` are CREATED or PROCESSING (ListExportJobs), or None if listing failed.

    :param hook: the hook.
    :param source_type: ``METRICS_DATA`` or ``MESSAGE_INSIGHTS``.
    """
    try:
        return sum(1 for _ in hook.list_unfinished_export_jobs(source_type))
    except Exception as exc:
        log.debug("Could not count the unfinished SES export jobs: %s", aws_errors.describe(exc))
        return None


def create_in_free_slot(
    hook: SesExportJobHook,
    request: CreateExportJobRequest,
    slots: SlotWait,
    logger: Any,
    hand_off: Callable[[SlotWait, int | None], None] | None = None,
) -> str:
    """
    CreateExportJob; while SES has no free slot, wait for one with ``slots``' backoff and retry.

    Every refused attempt logs one line with the number of unfinished jobs of the request's source type. When
    ``slot_wait_timeout`` is used up, raises :class:`~airflow_provider_sesexport.exceptions.SesExportNoSlotError`.

    :param hook: the hook.
    :param request: a validated CreateExportJob request.
    :param slots: the wait (limit, attempts so far, clock, sleep, jitter).
    :param logger: where the attempt lines go (the task's logger).
    :param hand_off: deferrable mode: called instead of pausing in this process; it defers the task (raises).
    :return: the new job's id.
    """
    while True:
        try:
            return hook.submit_export_job(request)
        except Exception as exc:
            if not aws_errors.means_no_free_slot(exc):
                raise
        unfinished = count_unfinished(hook, slots.source_type)
        pause = slots.next_pause()
        if pause is None:
            raise slots.exhausted()
        left = slots.seconds_left()
        if hand_off is not None:
            logger.info(
                "No free SES export slot: %s; waiting on the triggerer for one (%.0f s of slot_wait_timeout left).",
                slots.describe(unfinished),
                left,
            )
            hand_off(slots, unfinished)
        logger.info(
            "No free SES export slot: %s; trying again in %.1f s (%.0f s of slot_wait_timeout left).",
            slots.describe(unfinished),
            pause,
            left,
        )
        slots.sleep(pause)
