"""Unit-test fixtures: a hook whose boto3 client is wrapped in botocore's Stubber (validates every call)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from botocore.stub import Stubber

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook

if TYPE_CHECKING:
    from tests.unit.test_create_operator import Records


@pytest.fixture
def hook() -> SesExportJobHook:
    return SesExportJobHook(aws_conn_id=None, region_name="us-east-1")


@pytest.fixture
def stubber(hook: SesExportJobHook) -> Iterator[Stubber]:
    with Stubber(hook.conn) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture(autouse=True)
def waiter_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """
    The pauses ``SesExportJobHook.wait_for_export_job`` takes between polls, recorded instead of slept.

    ``waiter_delay`` has a floor of one second; units check the delay asked for without waiting it out.
    """
    import types

    from airflow_provider_sesexport.hooks import ses_export

    sleeps: list[float] = []
    monkeypatch.setattr(ses_export, "time", types.SimpleNamespace(sleep=sleeps.append))
    return sleeps


@pytest.fixture(params=["task_state_store", "variables"])
def records(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Records:
    """Where the create operator records its job id: each test runs on Airflow 3.3's task_state_store and on the
    Airflow Variables used below 3.3 (patched through ``_compat`` on Airflow 3.3 too)."""
    from tests.unit.test_create_operator import AIRFLOW_RESUMES_JOBS, Records

    if request.param == "task_state_store" and not AIRFLOW_RESUMES_JOBS:
        pytest.skip("task_state_store exists from Airflow 3.3 on")
    return Records(request.param, monkeypatch)


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> Records:
    """The job-id store below Airflow 3.3 (Airflow Variables), on any Airflow."""
    from tests.unit.test_create_operator import Records

    return Records("variables", monkeypatch)
