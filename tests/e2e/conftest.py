"""Helpers for running DAGs against the emulator in a real Airflow."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.conftest import moto_s3, moto_server  # noqa: F401  (moto S3 fixtures for e2e tests)
from tests.sql_fixtures import postgres_db, postgres_server, sql_db, sqlite_db  # noqa: F401  (SQL databases)

METRICS_SOURCE: dict[str, Any] = {
    "MetricsDataSource": {
        "Dimensions": {"EMAIL_IDENTITY": ["example.com", "example.org"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "DELIVERY", "Aggregation": "RATE"}],
        "StartDate": "2026-10-01T00:00:00Z",
        "EndDate": "2026-10-03T00:00:00Z",
    }
}


def create_job(emu: Any, data_format: str = "CSV", source: dict[str, Any] | None = None) -> str:
    """Start an export job on the emulator with plain boto3 (as another system would)."""
    import datetime as dt

    src = source or METRICS_SOURCE
    if "MetricsDataSource" in src:
        metrics = dict(src["MetricsDataSource"])
        for key in ("StartDate", "EndDate"):
            if isinstance(metrics[key], str):
                metrics[key] = dt.datetime.fromisoformat(metrics[key].replace("Z", "+00:00"))
        src = {"MetricsDataSource": metrics}
    return emu.client().create_export_job(ExportDataSource=src, ExportDestination={"DataFormat": data_format})["JobId"]


class _RecordLines(logging.Handler):
    """Keeps every log record's message (and traceback) as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:
            self.lines.append(str(record.msg))
        if record.exc_info and record.exc_info[1] is not None:
            self.lines.append("".join(traceback.format_exception(*record.exc_info)))


@pytest.fixture
def task_logs(capfd: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """
    What tasks printed and logged so far.

    Airflow 3 writes task logs to stdout through structlog (captured with ``capfd``); Airflow 2 through
    ``logging`` handlers that may hold a stream of an earlier test, so records are also collected by a
    handler of our own on the loggers Airflow 2 uses for tasks.
    """
    handler = _RecordLines()
    loggers = [logging.getLogger(name) for name in ("", "airflow", "airflow.task")]
    for logger in loggers:
        logger.addHandler(handler)
    # Airflow 2's dag.test() runs triggers inline, logging through their own (our package's) loggers, which
    # inherit the root logger's WARNING level: a triggerer would record their INFO lines in the task log.
    package_logger = logging.getLogger("airflow_provider_sesexport")
    package_level = package_logger.level
    if package_logger.getEffectiveLevel() > logging.INFO:
        package_logger.setLevel(logging.INFO)

    def read() -> str:
        captured = capfd.readouterr()
        return captured.out + captured.err + "\n".join(handler.lines)

    yield read
    package_logger.setLevel(package_level)
    for logger in loggers:
        logger.removeHandler(handler)


def xcom(dr: Any, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """Read an XCom back from the metadata DB (``map_index`` for one instance of a mapped task)."""
    if map_index < 0:
        return dr.get_task_instance(task_id).xcom_pull(task_ids=task_id, key=key)
    ti = dr.get_task_instance(task_id, map_index=map_index)
    return ti.xcom_pull(task_ids=task_id, key=key, map_indexes=map_index)


def try_number(dr: Any, task_id: str) -> int:
    return int(dr.get_task_instance(task_id).try_number)
