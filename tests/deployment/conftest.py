"""Driving a running deployment (``python -m deployment test``): Airflow only through its REST API, the metadata DB
only read to verify, the emulator and moto as the AWS a user's other systems talk to.

The deployment's state folder is given in ``SESEXPORT_DEPLOYMENT_STATE`` (see ``deployment/__main__.py``).
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import io
import json
import os
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Longest wait for a DAG run (a safety net: each scenario takes well under a minute when healthy).
RUN_TIMEOUT = 900.0
TERMINAL = {"success", "failed"}


#: The newest MWAA image: the only one that runs the drills marked ``newest_image_only`` (issue 11 allows that).
NEWEST_IMAGE = "3.3.1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"newest_image_only: a fault drill run on MWAA {NEWEST_IMAGE} only")


#: The browser check's screenshots (``test_zz_ui_browser.py``), listed at the end of the test output.
SCREENSHOTS = pytest.StashKey[list[Path]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    shots = config.stash.get(SCREENSHOTS, [])
    if shots:
        terminalreporter.write_sep("-", f"browser check screenshots ({len(shots)})")
        for path in shots:
            terminalreporter.write_line(str(path))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    image = json.loads((Path(os.environ["SESEXPORT_DEPLOYMENT_STATE"]) / "state.json").read_text())["image"]
    if image == NEWEST_IMAGE:
        return
    deselected = [item for item in items if item.get_closest_marker("newest_image_only")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@dataclass
class State:
    image: str
    data: dict[str, Any]

    @property
    def airflow_3(self) -> bool:
        return not self.image.startswith("2.")


@pytest.fixture(scope="session")
def state() -> State:
    folder = Path(os.environ["SESEXPORT_DEPLOYMENT_STATE"])
    data = json.loads((folder / "state.json").read_text())
    return State(image=data["image"], data=data)


class AirflowApi:
    """The stable REST API: v2 with a JWT from ``POST /auth/token`` on Airflow 3, v1 with basic auth on Airflow 2."""

    def __init__(self, state: State) -> None:
        import requests

        self.state = state
        self.session = requests.Session()
        base = state.data["ui_url"]
        if state.airflow_3:
            answer = self.session.post(f"{base}/auth/token", json={"username": "admin", "password": "admin"})
            answer.raise_for_status()
            self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
            self.base = f"{base}/api/v2"
        else:
            self.session.auth = ("admin", "admin")
            self.base = f"{base}/api/v1"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.session.request(method, self.base + path, timeout=60, **kwargs)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text[:2000]}")
        return answer.json() if answer.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def unpause(self, dag_id: str) -> None:
        assert self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})["is_paused"] is False

    def trigger(self, dag_id: str, logical_date: dt.datetime | None, conf: dict[str, Any] | None = None) -> str:
        """Create a manual run; ``logical_date=None``: without a logical date (Airflow 3: ``"logical_date": null``, a
        run with no data interval; Airflow 2's API has no such run: the field left out, the server takes "now")."""
        body: dict[str, Any] = {"conf": conf or {}}
        if logical_date is not None:
            body["logical_date"] = logical_date.isoformat()
        elif self.state.airflow_3:
            body["logical_date"] = None
        return str(self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{run_id}"))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
        """Until the run is finished (polling the API); returns it."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in TERMINAL:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"{dag_id} {run_id} still {run['state']}: {self.task_states(dag_id, run_id)}")
            time.sleep(2)

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """An XCom value, with the API's defaults (deserializing in the API server is off by default): Airflow 3
        answers the stored JSON, Airflow 2 its ``str()``, a Python literal for the plain values this provider pushes."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        if self.state.airflow_3:
            value = self.get(path, map_index=map_index, stringify="false")["value"]
            parse: Any = json.loads
        else:
            value = self.get(path, map_index=map_index)["value"]
            parse = ast.literal_eval
        if not isinstance(value, str):
            return value
        try:
            return parse(value)
        except (ValueError, SyntaxError):
            return value  # a plain string


@pytest.fixture(scope="session")
def api(state: State) -> AirflowApi:
    return AirflowApi(state)


class MetadataDb:
    """Read-only SQL against the metadata DB (verification only; Airflow is driven through the API)."""

    def __init__(self, url: str) -> None:
        import psycopg2

        self.connection = psycopg2.connect(url)
        self.connection.set_session(readonly=True, autocommit=True)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def columns(self, table: str) -> set[str]:
        return {
            r[0] for r in self.rows("SELECT column_name FROM information_schema.columns WHERE table_name = %s", table)
        }

    def reschedules(self, dag_id: str, run_id: str, task_id: str) -> int:
        """TaskReschedule rows of a task instance (Airflow 3 keys them by the task instance's id)."""
        if "ti_id" in self.columns("task_reschedule"):
            sql = (
                "SELECT count(*) FROM task_reschedule tr JOIN task_instance ti ON tr.ti_id = ti.id "
                "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = %s"
            )
        else:
            sql = "SELECT count(*) FROM task_reschedule WHERE dag_id = %s AND run_id = %s AND task_id = %s"
        return int(self.rows(sql, dag_id, run_id, task_id)[0][0])

    def triggers(self, dag_id: str, run_id: str) -> list[tuple[int, str, int | None]]:
        """(trigger id, classpath, triggerer job id) of the triggers the run's task instances wait on."""
        return [
            (int(r[0]), str(r[1]), r[2])
            for r in self.rows(
                "SELECT t.id, t.classpath, t.triggerer_id FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
                "WHERE ti.dag_id = %s AND ti.run_id = %s ORDER BY t.id",
                dag_id,
                run_id,
            )
        ]

    def worker_runs_finished(self, dag_id: str, run_id: str, task_id: str) -> bool:
        """Whether the Celery task of each instance's latest run has ended (its result is in the result backend)."""
        states = self.rows(
            "SELECT m.status FROM task_instance ti LEFT JOIN celery_taskmeta m ON m.task_id = ti.external_executor_id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = %s",
            dag_id,
            run_id,
            task_id,
        )
        return bool(states) and all(status == "SUCCESS" for (status,) in states)

    def running_triggerers(self) -> set[int]:
        return {
            int(r[0]) for r in self.rows("SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running'")
        }

    def asset_events(self) -> list[dict[str, Any]]:
        """Every Asset (Airflow 2: Dataset) event's ``extra`` with its URI."""
        if "asset_event" in {r[0] for r in self.rows("SELECT tablename FROM pg_tables")}:
            sql = "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON e.asset_id = a.id ORDER BY e.id"
        else:
            sql = "SELECT d.uri, e.extra FROM dataset_event e JOIN dataset d ON e.dataset_id = d.id ORDER BY e.id"
        return [
            {"uri": uri, **(extra if isinstance(extra, dict) else json.loads(extra or "{}"))}
            for uri, extra in self.rows(sql)
        ]


@pytest.fixture(scope="session")
def metadata_db(state: State) -> Iterator[MetadataDb]:
    db = MetadataDb(state.data["database_url"])
    yield db
    db.connection.close()


@pytest.fixture(scope="session")
def exports_db(state: State) -> Iterator[MetadataDb]:
    """The database the loader example writes to (connection ``ses_exports_db``), read only."""
    from deployment.airflow_settings import EXPORTS_DATABASE

    db = MetadataDb(state.data["database_url"].rsplit("/", 1)[0] + f"/{EXPORTS_DATABASE}")
    yield db
    db.connection.close()


class Aws:
    """The emulator (boto3 ``sesv2`` and its control API) and moto's S3, as the user's other systems reach them."""

    def __init__(self, state: State) -> None:
        import boto3

        credentials = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.endpoint = state.data["emulator_url"]
        self.ses = boto3.client("sesv2", endpoint_url=self.endpoint, **credentials)
        self.s3 = boto3.client("s3", endpoint_url=state.data["moto_url"], **credentials)
        self.bucket = state.data["bucket"]

    def control(self, operation: str, **values: Any) -> Any:
        """Run one of the emulator's control operations over HTTP."""
        from ses_export_emulator.cli import request_of
        from ses_export_emulator.operations import OPERATIONS

        with urllib.request.urlopen(request_of(OPERATIONS[operation], self.endpoint, values), timeout=30) as answer:
            return json.loads(answer.read() or b"{}")

    def unfinished_jobs(self, source_type: str) -> list[str]:
        """The emulator's jobs of ``source_type`` (``METRICS_DATA``, ``MESSAGE_INSIGHTS``) still CREATED or PROCESSING:
        real SES allows 20 of each at once."""
        return [
            j["JobId"]
            for j in self.control("jobs")["jobs"]
            if j["ExportSourceType"] == source_type and j["JobStatus"] in ("CREATED", "PROCESSING")
        ]

    def export_file(self, job_id: str) -> bytes:
        """The export file as SES serves it (a fresh pre-signed URL from GetExportJob)."""
        url = self.ses.get_export_job(JobId=job_id)["ExportDestination"]["S3Url"]
        with urllib.request.urlopen(url, timeout=60) as answer:
            return bytes(answer.read())

    def create_metrics_job(self, end: dt.datetime) -> str:
        """An export job started by another system (what the gate example waits for)."""
        source = {
            "MetricsDataSource": {
                "Dimensions": {"EMAIL_IDENTITY": ["example.com", "example.org"]},
                "Namespace": "VDM",
                "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "DELIVERY", "Aggregation": "RATE"}],
                "StartDate": end - dt.timedelta(days=2),
                "EndDate": end,
            }
        }
        return str(
            self.ses.create_export_job(ExportDataSource=source, ExportDestination={"DataFormat": "CSV"})["JobId"]
        )

    def create_insights_job(self, end: dt.datetime) -> str:
        """A Message Insights export job started by another system."""
        source = {"MessageInsightsDataSource": {"StartDate": end - dt.timedelta(days=1), "EndDate": end}}
        return str(
            self.ses.create_export_job(ExportDataSource=source, ExportDestination={"DataFormat": "CSV"})["JobId"]
        )


@pytest.fixture(scope="session")
def aws(state: State) -> Aws:
    return Aws(state)


@pytest.fixture(autouse=True)
def _clean_emulator_rules(aws: Aws) -> Iterator[None]:
    aws.control("clear_rules")
    yield
    aws.control("clear_rules")


def midnight(days_ago: int) -> dt.datetime:
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=days_ago)


def csv_records(body: bytes) -> int:
    """Data rows of a CSV export file (a header line, then one record per row)."""
    return sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8")))) - 1
