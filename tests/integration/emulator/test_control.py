"""The control-operation table and the advance-after-reads rule, through Python, HTTP and the CLI."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ses_export_emulator import SesExportEmulator
from ses_export_emulator.cli import main
from ses_export_emulator.control import _Control
from ses_export_emulator.jobs import JobError
from ses_export_emulator.operations import OPERATIONS, markdown_table

from .helpers import check_output, create, http

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def statuses(client: Any, job_id: str, reads: int) -> list[str]:
    """``reads`` GetExportJob calls in a row; their statuses."""
    return [client.get_export_job(JobId=job_id)["JobStatus"] for _ in range(reads)]


def listed(client: Any, job_id: str, **filters: Any) -> list[str]:
    """One ListExportJobs call; the job's status in it (empty when not listed)."""
    return [j["JobStatus"] for j in client.list_export_jobs(**filters)["ExportJobs"] if j["JobId"] == job_id]


def held_job(emu: SesExportEmulator, client: Any) -> str:
    """A job that stays PROCESSING (a ``hang`` rule) until a control operation moves it."""
    emu.add_rule(action="hang", count=1)
    job_id = create(client)
    time.sleep(0.05)  # past CREATED and the whole nominal lifecycle at time_scale 0.01
    return job_id


# -- the table ---------------------------------------------------------------------------------
def test_every_operation_is_a_python_method_with_its_signature() -> None:
    methods = {name: value for name, value in vars(SesExportEmulator).items() if isinstance(value, _Control)}
    assert set(methods) == set(OPERATIONS)
    emu = SesExportEmulator()
    for name, op in OPERATIONS.items():
        assert methods[name].apply is op.apply
        expected = list(inspect.signature(op.apply).parameters.values())[1:]
        assert list(inspect.signature(getattr(emu, name)).parameters.values()) == expected, name
        assert op.description and op.description.endswith("."), name
        assert all(p.help for p in op.params), (name, [p.name for p in op.params if not p.help])
    with pytest.raises(RuntimeError, match="not running"):
        emu.advance_after("x", reads=1)


def test_the_docs_list_the_table() -> None:
    page = (REPO / "docs" / "emulator.md").read_text()
    assert markdown_table() in page, "docs/emulator.md's control-operation table is stale: paste markdown_table()"


def test_every_read_only_route_answers(emu: SesExportEmulator) -> None:
    for op in OPERATIONS.values():
        if op.http_method == "GET":
            status, _, body = http("GET", f"{emu.endpoint_url}{op.path}")
            assert status == 200, (op.name, body)
            if op.name != "health":  # its answer carries the clock
                assert json.loads(body) == json.loads(json.dumps(op.to_json(getattr(emu, op.name)()))), op.name


def test_http_checks_names_and_types(emu: SesExportEmulator, client: Any) -> None:
    base = f"{emu.endpoint_url}/_emulator"
    job_id = held_job(emu, client)
    for body in (
        {"job_id": job_id},  # reads missing
        {"job_id": job_id, "reads": 0},
        {"job_id": job_id, "reads": 2.5},
        {"job_id": job_id, "reads": True},
        {"job_id": job_id, "reads": 1, "to": "PROCESSING"},
        {"job_id": job_id, "reads": 1, "count": "poll"},
        {"job_id": job_id, "reads": 1, "message": "only for FAILED"},
        {"job_id": job_id, "reads": 1, "nonsense": 1},
    ):
        status, _, answer = http("POST", f"{base}/advance-after", body)
        assert status == 400, (body, answer)
        assert json.loads(answer)["error"] == "BadRequest"
    assert http("POST", f"{base}/advance-after", [1])[0] == 400
    assert http("POST", f"{base}/throttle-all", {"seconds": "soon"})[0] == 400
    assert http("POST", f"{base}/fail-all", {"seconds": 1, "status": 404})[0] == 400
    assert emu.faults()["fail_all_remaining"] == 0
    assert client.get_export_job(JobId=job_id)["JobStatus"] == "PROCESSING"  # nothing above took effect


def test_new_storm_routes(emu: SesExportEmulator, client: Any) -> None:
    base = f"{emu.endpoint_url}/_emulator"
    status, _, body = http("POST", f"{base}/throttle-all", {"seconds": 10})
    assert status == 200 and json.loads(body)["throttle_all_remaining"] > 9
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.list_export_jobs()
    http("DELETE", f"{base}/faults")
    status, _, body = http("POST", f"{base}/fail-all", {"seconds": 10, "status": 500})
    assert status == 200 and json.loads(body)["fail_all_remaining"] > 9
    with pytest.raises(client.exceptions.ClientError) as info:
        client.list_export_jobs()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    http("DELETE", f"{base}/faults")
    status, _, body = http(
        "POST", f"{base}/fail-next", {"n": 1, "message": "via fail-next", "source_type": "METRICS_DATA"}
    )
    assert status == 200 and json.loads(body)["count"] == 1 and json.loads(body)["source_type"] == "METRICS_DATA"
    assert [r["message"] for r in emu.rules()] == ["via fail-next"]


# -- advance after N reads ---------------------------------------------------------------------
@pytest.mark.parametrize("to", ["COMPLETED", "FAILED", "CANCELLED"])
def test_advance_after_get_reads_python(emu: SesExportEmulator, client: Any, to: str) -> None:
    job_id = held_job(emu, client)
    message = "No VDM data for this identity" if to == "FAILED" else None
    rule = emu.advance_after(job_id, reads=3, to=to, message=message)
    assert rule == {"job_id": job_id, "reads": 3, "to": to, "message": message, "count": "get", "seen": 0}
    assert statuses(client, job_id, 2) == ["PROCESSING"] * 2
    for _ in range(3):
        assert listed(client, job_id) == ["PROCESSING"]  # ListExportJobs is not a read here
    assert emu.jobs()[0]["advance"]["seen"] == 2
    third, fourth = (client.get_export_job(JobId=job_id) for _ in range(2))
    assert third["JobStatus"] == "PROCESSING"  # the third read still sees the old status
    assert fourth["JobStatus"] == to
    check_output("GetExportJob", fourth)
    assert "CompletedTimestamp" in fourth
    assert listed(client, job_id) == [to]
    assert emu.jobs()[0]["advance"] is None
    if to == "COMPLETED":
        assert fourth["ExportDestination"]["S3Url"].startswith(emu.endpoint_url) and fourth["Statistics"]
    elif to == "FAILED":
        assert fourth["FailureInfo"]["ErrorMessage"] == message
    else:
        assert "FailureInfo" not in fourth and "S3Url" not in fourth["ExportDestination"]
        with pytest.raises(client.exceptions.BadRequestException, match="CANCELLED"):
            client.cancel_export_job(JobId=job_id)


def test_advance_counting_list_answers(emu: SesExportEmulator, client: Any) -> None:
    job_id = held_job(emu, client)
    emu.advance_after(job_id, reads=2, count="list")
    assert statuses(client, job_id, 4) == ["PROCESSING"] * 4  # GetExportJob does not count
    assert listed(client, job_id, JobStatus="CREATED") == []  # an answer not listing the job does not count
    assert listed(client, job_id, JobStatus="PROCESSING") == ["PROCESSING"]
    assert listed(client, job_id, JobStatus="PROCESSING") == ["PROCESSING"]
    assert listed(client, job_id, JobStatus="PROCESSING") == []  # as a deferrable wait sees it leave the list
    assert client.get_export_job(JobId=job_id)["JobStatus"] == "COMPLETED"


def test_advance_counting_any_read(emu: SesExportEmulator, client: Any) -> None:
    job_id = held_job(emu, client)
    emu.advance_after(job_id, reads=3, count="any")
    assert listed(client, job_id) == ["PROCESSING"]
    assert statuses(client, job_id, 1) == ["PROCESSING"]
    assert listed(client, job_id) == ["PROCESSING"]
    assert statuses(client, job_id, 1) == ["COMPLETED"]


def test_advance_the_next_job_holds_it_without_a_hang_rule(emu: SesExportEmulator, client: Any) -> None:
    emu.advance_after(reads=2, to="FAILED", message="second read")
    job_id, other = create(client), create(client)
    time.sleep(0.05)  # 50x the nominal lifecycle would have finished both by the clock
    assert emu.jobs()[0]["advance"]["job_id"] == job_id and emu.jobs()[1]["advance"] is None
    assert statuses(client, other, 1) == ["COMPLETED"]  # one rule, one job
    assert statuses(client, job_id, 2) == ["PROCESSING"] * 2
    assert client.get_export_job(JobId=job_id)["FailureInfo"]["ErrorMessage"] == "second read"


def test_advance_replaced_cleared_and_refused(emu: SesExportEmulator, client: Any) -> None:
    job_id = create(client)
    emu.advance_after(job_id, reads=5)
    time.sleep(0.05)
    statuses(client, job_id, 2)
    emu.advance_after(job_id, reads=1, to="CANCELLED")  # replaces the first; counting restarts
    assert statuses(client, job_id, 2) == ["PROCESSING", "CANCELLED"]
    with pytest.raises(JobError, match="already CANCELLED"):
        emu.advance_after(job_id, reads=1)
    with pytest.raises(JobError, match="does not exist"):
        emu.advance_after("no-such-job", reads=1)
    with pytest.raises(ValueError, match="reads"):
        emu.advance_after(reads=0)
    held = create(client)
    emu.advance_after(held, reads=100)
    emu.advance_after(reads=1)
    emu.clear_rules()  # every rule: the attached one and the queued one
    time.sleep(0.05)
    assert statuses(client, held, 1) == ["COMPLETED"]  # back on the clock, long past its lifecycle
    assert emu.jobs()[-1]["advance"] is None
    late = create(client)
    assert emu.jobs()[-1]["JobId"] == late and emu.jobs()[-1]["advance"] is None


def test_advance_after_over_http(emu: SesExportEmulator, client: Any) -> None:
    base = f"{emu.endpoint_url}/_emulator"
    job_id = held_job(emu, client)
    body = {"job_id": job_id, "reads": 2, "to": "FAILED", "message": "via http", "count": "get"}
    status, _, answer = http("POST", f"{base}/advance-after", body)
    assert status == 200 and json.loads(answer) == {**body, "seen": 0}
    assert json.loads(http("GET", f"{base}/jobs")[2])["jobs"][0]["advance"]["reads"] == 2
    first, second, third = (client.get_export_job(JobId=job_id) for _ in range(3))
    assert [first["JobStatus"], second["JobStatus"]] == ["PROCESSING", "PROCESSING"]
    assert third["JobStatus"] == "FAILED" and third["FailureInfo"]["ErrorMessage"] == "via http"
    status, _, answer = http("POST", f"{base}/advance-after", {"job_id": job_id, "reads": 1})
    assert status == 400 and json.loads(answer)["error"] == "BadRequestException"
    assert http("POST", f"{base}/advance-after", {"job_id": "nope", "reads": 1})[0] == 404
    status, _, answer = http("POST", f"{base}/advance-after", {"reads": 1, "to": "CANCELLED"})  # the next job
    assert status == 200 and json.loads(answer)["job_id"] is None
    nxt = create(client)
    time.sleep(0.05)
    assert statuses(client, nxt, 2) == ["PROCESSING", "CANCELLED"]


# -- CLI ---------------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "ses_export_emulator", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_control_advance_after(emu: SesExportEmulator, client: Any) -> None:
    job_id = held_job(emu, client)
    result = _cli(
        "control", "advance-after", "--endpoint", emu.endpoint_url, "--job-id", job_id,
        "--reads", "2", "--to", "FAILED", "--message", "from the CLI", "--count", "any",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["job_id"] == job_id and json.loads(result.stdout)["count"] == "any"
    assert listed(client, job_id) == ["PROCESSING"]
    first, second = (client.get_export_job(JobId=job_id) for _ in range(2))
    assert first["JobStatus"] == "PROCESSING"
    assert second["JobStatus"] == "FAILED" and second["FailureInfo"]["ErrorMessage"] == "from the CLI"


def test_cli_control_other_operations_and_errors(emu: SesExportEmulator, client: Any, capsys: Any) -> None:
    endpoint = ["--endpoint", emu.endpoint_url]
    job_id = held_job(emu, client)
    assert main(["control", "complete-job", "--job-id", job_id, *endpoint]) == 0
    assert json.loads(capsys.readouterr().out)["JobStatus"] == "COMPLETED"
    assert (
        main(["control", "set-faults", "--deny-operation", "ListExportJobs", "--error-status", "503", *endpoint]) == 0
    )
    capsys.readouterr()
    assert emu.faults()["deny_operations"] == ("ListExportJobs",) and emu.faults()["error_status"] == 503
    assert main(["control", "jobs", *endpoint]) == 0
    assert json.loads(capsys.readouterr().out)["jobs"][0]["JobId"] == job_id
    assert main(["control", "advance-after", "--job-id", job_id, "--reads", "1", *endpoint]) == 1
    assert "already COMPLETED" in capsys.readouterr().err
    assert main(["control", "delete-job", "--job-id", "nope", *endpoint]) == 1
    assert main(["control", "health", "--endpoint", "http://127.0.0.1:9"]) == 2  # nothing listens there
    with pytest.raises(SystemExit):
        main(["control", "advance-after", "--to", "PROCESSING", *endpoint])  # argparse: bad choice, reads missing
    with pytest.raises(SystemExit):
        main(["control", "--help"])
    out = capsys.readouterr().out
    for op in OPERATIONS.values():
        assert op.cli_name in out


def test_cli_start_up_flags_still_work() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ses_export_emulator", "--port", "0", "--time-scale", "0.01",
         "--fail-next", "1", "--deny-operation", "ListExportJobs", "--error-status", "503",
         "--throttle-all-seconds", "30", "--expire-urls-immediately", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().rsplit(" ", 1)[1].strip()
        faults = json.loads(http("GET", f"{endpoint}/_emulator/faults")[2])
        assert faults["deny_operations"] == ["ListExportJobs"] and faults["error_status"] == 503
        assert faults["expire_urls_immediately"] is True and faults["throttle_all_remaining"] > 20
        rules = json.loads(http("GET", f"{endpoint}/_emulator/rules")[2])["rules"]
        assert [(r["action"], r["count"]) for r in rules] == [("fail", 1)]
        result = _cli("control", "clear-faults", "--endpoint", endpoint)
        assert result.returncode == 0 and json.loads(result.stdout)["throttle_all_remaining"] == 0
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
