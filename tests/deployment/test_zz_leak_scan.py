"""The deployment's leak scan, last in the session (after the drills and ``test_examples.py``): no secret value of a
pre-signed URL (a signature, security token or access key id the deployment's emulator put in a URL: its
``issued_secrets`` control operation; raw or URL-encoded, whatever text surrounds it, :mod:`tests.leakcheck`) in any
log file of any process or task (triggerer logs included), in the metadata DB tables a URL could land in (XCom except
the ``s3_url`` key, rendered fields, trigger kwargs decrypted with the deployment's fernet key, DAG run conf, the event
log, task instances' trigger payloads), or in what the UI shows of the result operator (the REST API's answers its
pages are rendered from)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.deployment.conftest import AirflowApi, Aws, MetadataDb, State
from tests.leakcheck import ALLOWED_XCOM_KEYS, Collector, find_leaks

#: The result operator of the gate example: the task that reads the URL and pushes it under ``s3_url``.
RESULT_TASK = ("example_ses_export_gate", "export_result")


def latest_success(api: AirflowApi, dag_id: str, task_id: str) -> dict[str, Any]:
    """The newest run of ``dag_id`` in which ``task_id`` succeeded (the scenarios of ``test_examples.py``).

    :param api: the REST API.
    :param dag_id: the DAG.
    :param task_id: the task that must have succeeded.
    """
    runs = sorted(api.runs(dag_id), key=lambda r: r["start_date"] or "", reverse=True)
    for run in runs:
        if api.task_states(dag_id, run["dag_run_id"]).get(task_id) == "success":
            return run
    raise AssertionError(f"no run of {dag_id} with {task_id} succeeded: the example scenarios did not run")


def collector_for(state: State) -> Collector:
    """A collector looking for every secret value the deployment's emulator (another process) put in a URL so far.

    :param state: the deployment.
    """
    values = set(Aws(state).control("issued_secrets")["values"])
    assert values, "the deployment's emulator issued no URL: the scan would prove nothing"
    return Collector(extra_values=values)


#: Tables a URL could be written to; every column of each is scanned, whatever the Airflow version names them.
TABLES = ("xcom", "rendered_task_instance_fields", "trigger", "dag_run", "log", "task_instance")


def log_dirs(state: State) -> list[Path]:
    """Every process's log (``.deployment/<image>/logs``) and the task, triggerer and DAG processor logs under
    ``AIRFLOW_HOME/logs``."""
    return [Path(state.data["task_log_folder"]).parent.parent / "logs", Path(state.data["task_log_folder"])]


def scan_files(roots: Iterable[Path], collector: Collector) -> list[Path]:
    """Scan every file under ``roots`` (recursively); returns the files scanned.

    :param roots: folders.
    :param collector: where findings go.
    """
    files = sorted(p for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file())
    for path in files:
        collector.scan(f"file {path}", path.read_text("utf-8", "replace"))
    return files


def _text(value: Any) -> str:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else value if isinstance(value, str) else json.dumps(value, default=str)


def decrypted(value: Any, fernet_key: str) -> str:
    """A trigger's ``kwargs`` column in plain text: Airflow stores it fernet-encrypted (a scan of the ciphertext would
    prove nothing); a value that is no fernet token is returned as it is.

    :param value: the column's value.
    :param fernet_key: the deployment's key (``state.json`` ``secrets.fernet_key``).
    """
    from cryptography.fernet import Fernet, InvalidToken

    text = _text(value)
    token = json.loads(text) if text.startswith('"') else text
    try:
        return Fernet(fernet_key.encode()).decrypt(str(token).encode()).decode("utf-8", "replace")
    except (InvalidToken, ValueError):
        return text


def scan_tables(db: MetadataDb, fernet_key: str, collector: Collector) -> dict[str, int]:
    """Scan every row (every column) of :data:`TABLES`; returns rows scanned per table.

    :param db: the metadata DB.
    :param fernet_key: decrypts the trigger table's ``kwargs``.
    :param collector: where findings go.
    """
    counts = {}
    for table in TABLES:
        with db.connection.cursor() as cursor:
            cursor.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        n = 0
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            if table == "xcom" and values.get("key") in ALLOWED_XCOM_KEYS:
                continue
            if table == "trigger":
                values["kwargs"] = decrypted(values.get("kwargs"), fernet_key)
            label = f"table {table} " + ", ".join(
                f"{c}={values[c]!r}" for c in ("dag_id", "task_id", "key") if c in values
            )
            collector.scan(label, "\n".join(_text(v) for v in values.values()))
            n += 1
        counts[table] = n
    return counts


def scan_ui(api: AirflowApi, state: State, collector: Collector) -> list[str]:
    """The result operator's rendered fields and log as the UI gets them (REST API, logged in); returns what was
    scanned.

    :param api: the REST API.
    :param state: the deployment.
    :param collector: where findings go.
    """
    dag_id, task_id = RESULT_TASK
    run_id = latest_success(api, dag_id, task_id)["dag_run_id"]
    ti_path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
    pages = {
        ti_path: api.get(ti_path),
        f"{ti_path}/logs/1": api.request("GET", f"{ti_path}/logs/1", params={"full_content": "true"},
                                         headers={"Accept": "application/json"}),
    }  # fmt: skip
    assert "rendered_fields" in pages[ti_path], pages[ti_path]
    assert pages[f"{ti_path}/logs/1"]["content"], "the result operator's log is empty"
    for path, body in pages.items():
        collector.scan(f"UI {path}", json.dumps(body))
    return list(pages)


def test_scanner_finds_a_planted_signed_url(tmp_path: Path, api: AirflowApi, aws: Aws, state: State) -> None:
    """The scan can fail: a real URL from the emulator's GetExportJob (its values asked from the emulator, not read
    from the URL), planted in a log file and in an encrypted trigger payload, is found; its redacted form is not."""
    from cryptography.fernet import Fernet

    from airflow_provider_sesexport.utils.redaction import redact_url

    dag_id, task_id = RESULT_TASK
    job_id = api.xcom(dag_id, latest_success(api, dag_id, task_id)["dag_run_id"], task_id, "job_id")
    url = aws.ses.get_export_job(JobId=job_id)["ExportDestination"]["S3Url"]
    (tmp_path / "task" / "attempt=1").mkdir(parents=True)
    (tmp_path / "task" / "attempt=1" / "leaky.log").write_text(f"[2026-12-03] INFO - downloading {url}\n")
    (tmp_path / "clean.log").write_text(f"[2026-12-03] INFO - downloading {redact_url(url)}\n")
    collector = collector_for(state)
    assert len(scan_files([tmp_path], collector)) == 2
    # signature, security token, access key id
    assert [f.source for f in collector.findings] == [f"file {tmp_path}/task/attempt=1/leaky.log"] * 3

    key = state.data["secrets"]["fernet_key"]
    token = Fernet(key.encode()).encrypt(json.dumps({"url": url}).encode()).decode()
    assert not find_leaks(token, "ciphertext", collector.extra_values)
    assert len(find_leaks(decrypted(token, key), "decrypted", collector.extra_values)) == 3


def test_no_presigned_url_in_logs_db_or_ui(api: AirflowApi, metadata_db: MetadataDb, state: State) -> None:
    collector = collector_for(state)
    files = scan_files(log_dirs(state), collector)
    rows = scan_tables(metadata_db, state.data["secrets"]["fernet_key"], collector)
    pages = scan_ui(api, state, collector)

    print(
        f"\nleak scan ({state.image}): {len(files)} log files ({collector.chars_scanned} chars in all), "
        f"rows {json.dumps(rows)}, {len(pages)} UI pages: {pages}; {len(collector.extra_values)} secret values "
        f"issued by the emulator looked for; findings: {len(collector.findings)}"
    )
    # the scan saw the context a leak would sit in: the scenarios ran, each kind of process logged
    dag_id, task_id = RESULT_TASK
    result_logs = [p for p in files if f"dag_id={dag_id}" in str(p) and f"task_id={task_id}" in str(p)]
    assert result_logs and all(p.stat().st_size > 0 for p in result_logs), "no log of the result operator"
    for process in ("scheduler", "triggerer-1", "triggerer-2", "worker-1", "ui"):
        assert any(p.name == f"{process}.log" and p.stat().st_size > 0 for p in files), f"no {process} log"
    assert rows["xcom"] > 0 and rows["rendered_task_instance_fields"] > 0 and rows["dag_run"] > 0, rows
    assert rows["log"] > 0, rows
    assert not collector.findings, "pre-signed URLs leaked:\n" + "\n".join(map(str, collector.findings[:50]))
