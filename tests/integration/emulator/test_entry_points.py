"""Loopback refusal, the CLI, the pytest fixtures, start-up time and the Airflow connection value."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ses_export_emulator import NonLoopbackRefused, SesExportEmulator
from ses_export_emulator.config import is_loopback

from .conftest import NO_RETRIES
from .helpers import create, http

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com", "::"])
def test_non_loopback_is_refused(host: str) -> None:
    with pytest.raises(NonLoopbackRefused, match="allow_non_loopback"):
        SesExportEmulator(host=host)


def test_loopback_hosts() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("192.168.0.1")
    SesExportEmulator(host="0.0.0.0", allow_non_loopback=True)  # constructing is allowed, nothing bound


def test_start_is_fast_and_stop_is_idempotent() -> None:
    emu = SesExportEmulator(time_scale=0.01)
    started = time.monotonic()
    emu.start()
    try:
        assert time.monotonic() - started < 1.0
        assert emu.endpoint_url.startswith("http://127.0.0.1:") and emu.port > 0
        assert emu.client().list_export_jobs()["ExportJobs"] == []
    finally:
        emu.stop()
    emu.stop()
    assert not emu.running
    with pytest.raises(RuntimeError):
        emu.stats()


def test_connection_values(emu: SesExportEmulator) -> None:
    conn = json.loads(emu.airflow_conn_json())
    assert conn == {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"region_name": "us-east-1", "endpoint_url": emu.endpoint_url},
    }
    uri = urlsplit(emu.airflow_conn_uri())
    assert uri.scheme == "aws" and uri.username == "testing"
    assert parse_qs(uri.query) == {"region_name": ["us-east-1"], "endpoint_url": [emu.endpoint_url]}
    assert emu.region == "us-east-1"


def test_function_fixture_points_aws_default_at_emulator(ses_export_emulator: SesExportEmulator) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn["extra"]["endpoint_url"] == ses_export_emulator.endpoint_url
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert os.environ["AWS_ACCESS_KEY_ID"] and os.environ["AWS_SECRET_ACCESS_KEY"]
    assert ses_export_emulator.options.time_scale == 0.01
    import boto3

    client = boto3.client("sesv2", endpoint_url=conn["extra"]["endpoint_url"])
    assert client.list_export_jobs()["ExportJobs"] == []


@pytest.mark.ses_export_emulator(seed=5, time_scale=0.5, processing_seconds=9)
def test_function_fixture_marker_options(ses_export_emulator: SesExportEmulator) -> None:
    assert ses_export_emulator.options.seed == 5
    assert ses_export_emulator.options.time_scale == 0.5
    assert ses_export_emulator.options.processing_seconds == 9


@pytest.mark.ses_export_emulator(seed=5, time_scale=0.5)
class TestMarkersAddUp:
    @pytest.mark.ses_export_emulator(time_scale=0.2, processing_seconds=9)
    def test_the_closest_marker_wins_an_option_they_share(self, ses_export_emulator: SesExportEmulator) -> None:
        options = ses_export_emulator.options
        assert (options.seed, options.time_scale, options.processing_seconds) == (5, 0.2, 9)


@pytest.mark.ses_export_emulator(conn_id="ses_emu_planted")
def test_marker_conn_id_points_that_connection(ses_export_emulator: SesExportEmulator) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_SES_EMU_PLANTED"])
    assert conn["extra"]["endpoint_url"] == ses_export_emulator.endpoint_url
    assert ses_export_emulator.endpoint_url not in os.environ.get("AIRFLOW_CONN_AWS_DEFAULT", "")


def test_factory_touches_the_environment_only_for_a_conn_id(
    ses_export_emulator_factory: Callable[..., SesExportEmulator],
) -> None:
    quiet = ses_export_emulator_factory()
    assert not [value for value in os.environ.values() if quiet.endpoint_url in value]
    named = ses_export_emulator_factory(conn_id="second_emu", seed=4)
    assert named.options.seed == 4
    assert json.loads(os.environ["AIRFLOW_CONN_SECOND_EMU"])["extra"]["endpoint_url"] == named.endpoint_url


def test_airflow_hook_uses_fixture_connection(ses_export_emulator: SesExportEmulator) -> None:
    pytest.importorskip("airflow.providers.amazon.aws.hooks.base_aws")
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id="aws_default", client_type="sesv2")
    client = hook.get_conn()
    assert client.meta.endpoint_url == ses_export_emulator.endpoint_url
    job_id = create(client)
    assert client.get_export_job(JobId=job_id)["JobId"] == job_id


def test_session_fixture(ses_export_emulator_session: SesExportEmulator) -> None:
    assert ses_export_emulator_session.running
    assert ses_export_emulator_session.client(config=NO_RETRIES).list_export_jobs()["ResponseMetadata"]


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ses_export_emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO),
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline(), proc.stdout.readline()]
    return proc, lines


def test_cli_prints_endpoint_and_connection_and_serves() -> None:
    proc, lines = _start_cli("--port", "0", "--seed", "3", "--time-scale", "0.01", "--latency", "0", "--quiet")
    try:
        assert lines[0].startswith("SES v2 export-job emulator listening on http://127.0.0.1:"), lines
        endpoint = lines[0].rsplit(" ", 1)[1].strip()
        assert lines[1].startswith("export AIRFLOW_CONN_AWS_DEFAULT='")
        conn = json.loads(lines[1].split("=", 1)[1].strip().strip("'"))
        assert conn["extra"]["endpoint_url"] == endpoint and conn["conn_type"] == "aws"
        assert http("GET", f"{endpoint}/_emulator/health")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_cli_refuses_non_loopback() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "ses_export_emulator", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 2 and "allow-non-loopback" in result.stderr


def test_cli_main_help(capsys: Any) -> None:
    from ses_export_emulator.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for flag in (
        "--time-scale",
        "--row-multiplier",
        "--create-rate",
        "--error-rate",
        "--reset-rate",
        "--download-drop-after",
        "--allow-non-loopback",
    ):
        assert flag in out
