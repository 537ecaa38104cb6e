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
