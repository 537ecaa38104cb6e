"""
Helpers of SesCreateExportJobOperator: pacing CreateExportJob calls and waiting for a free export slot.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.utils import aws_errors
from airflow_provider_sesexport.utils.export_slots import SlotWait
from airflow_provider_sesexport.utils.validation import CreateExportJobRequest

log = logging.getLogger(__name__)

#: CreateExportJob allows one call per second per account; the margin absorbs network jitter.
CREATE_MIN_SPACING = 1.1
#: Attempts (each with botocore's own retries) while CreateExportJob keeps being throttled.
CREATE_ATTEMPTS = 8

_create_lock = threading.Lock()
_last_create = 0.0


def create_paced(hook: SesExportJobHook, request: CreateExportJobRequest, sleep: Any = time.sleep) -> str:
    """
    Call CreateExportJob at most once per second from this process, retrying throttling with jittered backoff.

    :param hook: the hook.
    :param request: a validated CreateExportJob request.
    :param sleep: ``time.sleep`` (replaced in unit tests).
    :return: the new job's id.
    """
    global _last_create
    hook.conn  # noqa: B018  (create the client first: its set-up time must not eat into the spacing)
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        with _create_lock:
            wait = _last_create + CREATE_MIN_SPACING - time.monotonic()
            if wait > 0:
                sleep(wait)
            try:
                return hook.submit_export_job(request)
            except Exception as exc:
                if aws_errors.error_code(exc) not in aws_errors.THROTTLING_CODES or attempt == CREATE_ATTEMPTS:
                    raise
                delay = min(30.0, 2.0**attempt) * random.uniform(0.5, 1.0)
                log.warning(
                    "CreateExportJob throttled after botocore's retries (%s); trying again in %.1fs (%d/%d).",
                    aws_errors.describe(exc),
                    delay,
                    attempt,
                    CREATE_ATTEMPTS,
                )
            finally:
                # spaced from when the previous call returned, i.e. after SES received it
                _last_create = time.monotonic()
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


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
    CreateExportJob (paced); while SES has no free slot, wait for one with ``slots``' backoff and retry.

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
            return create_paced(hook, request, sleep=slots.sleep)
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
