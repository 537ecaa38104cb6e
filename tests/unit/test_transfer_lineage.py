"""
OpenLineage facets of SesExportToS3Operator.

The OpenLineage provider is an optional extra and is not installed in the test environments, so its
two entry points (``OperatorLineage`` and the ``Dataset`` facet) are stood in for by minimal modules
with the same names and call signatures; what is tested is what the operator hands them.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator


@dataclass
class Dataset:
    namespace: str
    name: str
    facets: dict[str, Any] = field(default_factory=dict)


@dataclass
class OperatorLineage:
    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)


@pytest.fixture
def openlineage(monkeypatch: pytest.MonkeyPatch) -> None:
    facet = types.ModuleType("airflow.providers.common.compat.openlineage.facet")
    facet.Dataset = Dataset  # type: ignore[attr-defined]
    extractors = types.ModuleType("airflow.providers.openlineage.extractors")
    extractors.OperatorLineage = OperatorLineage  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow.providers.common.compat.openlineage.facet", facet)
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", extractors)


def test_facets_after_a_copy(openlineage: None) -> None:
    op = SesExportToS3Operator(task_id="copy", job_id="job-1", s3_bucket="bkt", s3_key="ses/{{ ds }}.csv")
    op._lineage = {"job_id": "job-7", "bucket": "bkt", "key": "ses/2026-11-01.csv", "region": "eu-west-1"}
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)
    assert lineage.inputs == [Dataset(namespace="aws+sesv2://eu-west-1", name="export-job/job-7")]
    assert lineage.outputs == [Dataset(namespace="s3://bkt", name="ses/2026-11-01.csv")]


def test_no_facets_before_a_copy(openlineage: None) -> None:
    op = SesExportToS3Operator(task_id="copy", job_id="job-1", s3_bucket="bkt", s3_key="k.csv")
    assert op.get_openlineage_facets_on_complete(task_instance=None) == OperatorLineage()
