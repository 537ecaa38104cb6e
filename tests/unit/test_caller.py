"""The user agent's ``Caller/``: the frame walk answers what the Amazon provider's ``inspect.stack()`` does."""

from __future__ import annotations

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.utils.caller import find_operator_class_name


class Task:
    def execute(self, find):
        return find("execute")

    def poke(self, find):
        return self.execute(find)


def test_the_innermost_execute_frame_names_the_class():
    assert find_operator_class_name("execute") is None  # no execute frame here
    for target in ("execute", "poke"):
        ours = Task().poke(lambda name, t=target: find_operator_class_name(t))
        theirs = Task().poke(lambda name, t=target: AwsBaseHook._find_operator_class_name(t))
        assert ours == theirs == "Task"


def test_the_ses_hook_uses_it():
    assert SesExportJobHook._find_operator_class_name is find_operator_class_name
