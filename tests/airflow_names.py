"""
DAG-authoring names for the tests, imported the way a user's DAG file imports them.

The package's ``_compat`` only holds what the package itself needs; tests that build DAGs take
``DAG``, ``task`` and ``Param`` from here. ``AIRFLOW_V_3`` is found by probing (the task SDK's
``DAG`` imports), independently of ``_compat``'s version check, so a test can compare the two.
"""

from __future__ import annotations

from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, Param, task

    AIRFLOW_V_3 = True
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[assignment,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.models.param import Param  # type: ignore[assignment,no-redef]

    AIRFLOW_V_3 = False


def daily_data_interval_schedule() -> Any:
    """
    A daily schedule whose runs cover the previous UTC day (``data_interval_start`` < ``data_interval_end``).

    Airflow 3 maps ``"@daily"`` and timedeltas to trigger timetables, whose runs have an empty data
    interval; ``CronDataIntervalTimetable`` behaves the same on Airflow 2 and 3.
    """
    from airflow.timetables.interval import CronDataIntervalTimetable

    return CronDataIntervalTimetable("0 0 * * *", timezone="UTC")


__all__ = ["AIRFLOW_V_3", "DAG", "Param", "daily_data_interval_schedule", "task"]
