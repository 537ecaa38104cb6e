"""Kept so that its import path keeps working: the states live in :mod:`airflow_provider_sesexport.utils.export_job`."""

from __future__ import annotations

from airflow_provider_sesexport.utils.export_job import (
    CANCELLED,
    FAILED,
    FAILURE_STATES,
    FINISHED_OUTCOMES,
    INTERMEDIATE_STATES,
    OUTCOME_OF_STATUS,
    RUNNING,
    SUCCESS,
    SUCCESS_STATES,
    TERMINAL_STATES,
)

__all__ = [
    "CANCELLED",
    "FAILED",
    "FAILURE_STATES",
    "FINISHED_OUTCOMES",
    "INTERMEDIATE_STATES",
    "OUTCOME_OF_STATUS",
    "RUNNING",
    "SUCCESS",
    "SUCCESS_STATES",
    "TERMINAL_STATES",
]
