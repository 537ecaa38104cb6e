"""
The kinds of DAG run a user starts, as ``dag.test()`` keyword arguments, and the export window each must cover
(computed here from the run's dates, independently of the example DAGs' ``export_window``).

- ``logical date``: a run with a logical date and a data interval, as the scheduler, a backfill or
  ``airflow dags trigger -e`` create it; for 2026-11-02 the timetable's interval is the previous UTC day.
- ``ui defaults``: the UI's trigger dialog left as it is: logical date "now", data interval inferred by the
  timetable (the previous UTC day); also what Airflow 2's REST API does when no logical date is given.
- ``no logical date`` (Airflow 3 only; Airflow 2 has no such run): the REST API's ``"logical_date": null``, no data
  interval at all; the examples export the UTC day before ``run_after``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.airflow_names import AIRFLOW_V_3

UTC = dt.timezone.utc
#: The logical date of the ``logical date`` kind.
RUN_DATE = dt.datetime(2026, 11, 2, tzinfo=UTC)
RUN_KINDS = ["logical date", "ui defaults", *(["no logical date"] if AIRFLOW_V_3 else [])]


def run_kwargs(kind: str) -> dict[str, Any]:
    """``dag.test()`` arguments starting a run of ``kind``."""
    if kind == "logical date":
        return {"logical_date" if AIRFLOW_V_3 else "execution_date": RUN_DATE}
    if kind == "ui defaults":
        return {}  # dag.test()'s default on 2.10 and 3.x: logical date now, data interval inferred
    assert kind == "no logical date" and AIRFLOW_V_3
    return {"logical_date": None}


def _midnight(when: dt.datetime) -> dt.datetime:
    return when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def expected_window(kind: str, dr: Any) -> tuple[dt.datetime, dt.datetime]:
    """The UTC day (start, end) a run of ``kind`` must export: the previous day of its logical date or run_after."""
    if kind == "logical date":
        return RUN_DATE - dt.timedelta(days=1), RUN_DATE
    if kind == "ui defaults":
        end = _midnight(dr.logical_date if AIRFLOW_V_3 else dr.execution_date)
        return end - dt.timedelta(days=1), end
    # no data interval at all: the window must come from run_after
    assert dr.logical_date is None and dr.data_interval_start is None, (dr.logical_date, dr.data_interval_start)
    end = _midnight(dr.run_after)
    return end - dt.timedelta(days=1), end
