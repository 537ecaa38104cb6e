"""The user agent's ``Caller/``: the frame walk answers what the Amazon provider's ``inspect.stack()`` does."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator
from airflow_provider_sesexport.utils.caller import find_operator_class_name, with_frame_walk


class Task:
    def execute(self, find: Callable[[], Any]) -> Any:
        return find()

    def poke(self, find: Callable[[], Any]) -> Any:
        return self.execute(find)


def test_the_innermost_execute_frame_names_the_class() -> None:
    assert find_operator_class_name("execute") is None  # no execute frame here
    for target in ("execute", "poke"):
        ours = Task().poke(lambda t=target: find_operator_class_name(t))
        theirs = Task().poke(lambda t=target: AwsBaseHook._find_operator_class_name(t))
        assert ours == theirs == "Task"


def _no_stack(*_: Any, **__: Any) -> Any:
    raise AssertionError("inspect.stack() called")


def test_every_hook_built_here_names_its_caller_without_inspect_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspect, "stack", _no_stack)  # the provider's own lookup now fails, and says "Unknown"

    class CopyTask:
        def execute(self) -> dict[str, str]:
            copy = SesExportToS3Operator(task_id="copy", job_id="job-1", s3_bucket="bucket", s3_key="key")
            ses = SesExportJobHook(aws_conn_id=None, region_name="us-east-1")
            return {
                "ses": ses._get_caller(),
                "export s3": ses._export_s3_hook()._get_caller(),
                "destination": copy.dest_hook._get_caller(),
                "plain S3Hook": S3Hook(aws_conn_id=None)._get_caller(),
                "with_frame_walk": with_frame_walk(S3Hook(aws_conn_id=None))._get_caller(),
            }

    assert CopyTask().execute() == {
        "ses": "CopyTask",
        "export s3": "CopyTask",
        "destination": "CopyTask",
        "plain S3Hook": "Unknown",  # the control: the provider's way is what inspect.stack() broke
        "with_frame_walk": "CopyTask",
    }
