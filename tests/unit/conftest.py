"""Unit-test fixtures: a hook whose boto3 client is wrapped in botocore's Stubber (validates every call)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.stub import Stubber

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook


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
    The pauses the Amazon provider's ``waiter_with_logging.wait`` takes between polls, recorded instead of slept.

    ``waiter_delay`` has a floor of one second; units check the delay asked for without waiting it out.
    """
    import types

    from airflow.providers.amazon.aws.utils import waiter_with_logging

    sleeps: list[float] = []
    monkeypatch.setattr(waiter_with_logging, "time", types.SimpleNamespace(sleep=sleeps.append))
    return sleeps
