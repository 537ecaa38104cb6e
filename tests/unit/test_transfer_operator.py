"""SesExportToS3Operator without AWS: argument checks, templating, outlets, part sizes, links, lineage."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_sesexport import get_provider_info
from airflow_provider_sesexport._compat import AssetOrDataset
from airflow_provider_sesexport.links import S3ObjectLink
from airflow_provider_sesexport.transfers._destination import (
    console_key,
    resolve_destination,
    validate_bucket,
    validate_key,
)
from airflow_provider_sesexport.transfers.ses_export_to_s3 import MIB, SesExportToS3Operator
from airflow_provider_sesexport.utils.validation import SesExportInputError


def make(**kwargs: Any) -> SesExportToS3Operator:
    args: dict[str, Any] = {"task_id": "copy", "job_id": "job-1", "s3_bucket": "my-bucket", "s3_key": "ses/x.csv"}
    args.update(kwargs)
    return SesExportToS3Operator(**args)


@pytest.mark.parametrize(
    "bucket",
    # the reserved affixes inside a name are fine; a directory bucket's name ends with --x-s3
    ["my-bucket", "abc", "a.b-c.d1", "x" * 63, "my-xn--bucket", "s3alias-exports", "my-exports--usw2-az1--x-s3"],
)
def test_valid_bucket_names(bucket: str) -> None:
    assert validate_bucket(bucket) == bucket


@pytest.mark.parametrize(
    "bucket",
    ["", "ab", "x" * 64, "My-Bucket", "my_bucket", "-abc", "abc-", "a..b", "a.-b", "192.168.1.1", "s3://b", None],
)
def test_invalid_bucket_names_name_the_parameter(bucket: Any) -> None:
    with pytest.raises(SesExportInputError, match=r"Invalid s3_bucket=.*expected an S3 bucket name"):
        validate_bucket(bucket)


@pytest.mark.parametrize(
    ("bucket", "affix"),
    [
        ("xn--exports", "xn--"),
        ("sthree-exports", "sthree-"),
        ("sthree-configurator-x", "sthree-"),
        ("amzn-s3-demo-bucket", "amzn-s3-demo-"),
        ("exports-s3alias", "-s3alias"),
        ("exports--ol-s3", "--ol-s3"),
        ("exports.mrap", ".mrap"),
        ("exports--table-s3", "--table-s3"),
    ],
)
def test_bucket_names_with_a_reserved_prefix_or_suffix_are_refused(bucket: str, affix: str) -> None:
    with pytest.raises(SesExportInputError, match=rf"Invalid s3_bucket={bucket!r}.*{re.escape(repr(affix))}"):
        validate_bucket(bucket)


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("", "expected an S3 object key"),
        ("None", "expected an S3 object key"),
        ("/abs.csv", "leading '/'"),
        ("dir/", "ends with '/'"),
        ("a\nb", "control characters"),
        ("k" * 1025, "longer than S3 allows"),
        (None, "expected an S3 object key"),
    ],
)
def test_invalid_keys_explain_the_fix(key: Any, hint: str) -> None:
    with pytest.raises(SesExportInputError, match="Invalid s3_key=") as err:
        validate_key(key)
    assert hint in str(err.value)


def test_key_length_counts_utf8_bytes() -> None:
    assert validate_key("é" * 512) == "é" * 512
    with pytest.raises(SesExportInputError):
        validate_key("é" * 513)


def test_resolve_dest_uri() -> None:
    assert resolve_destination("s3://bkt/a/b c.csv", None, None) == ("bkt", "a/b c.csv")
    with pytest.raises(SesExportInputError, match=r"Invalid dest \(bucket part\)"):
        resolve_destination("s3://BKT/a.csv", None, None)
    with pytest.raises(SesExportInputError, match=r"Invalid dest="):
        resolve_destination("https://bkt/a.csv", None, None)
    with pytest.raises(SesExportInputError, match=r"Invalid dest \(key part\)"):
        resolve_destination("s3://bkt/", None, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dest": "s3://b/k"}, "not both"),
        ({"s3_bucket": None}, "Invalid s3_bucket=None"),
        ({"s3_key": None}, "Invalid s3_key=None"),
        ({"part_size": 1024}, "Invalid part_size=1024"),
        ({"chunk_size": 0}, "Invalid chunk_size=0"),
        ({"max_concurrency": 0}, "Invalid max_concurrency=0"),
        ({"replace": "yes"}, "Invalid replace='yes'"),
        ({"gzip": 1}, "Invalid gzip=1"),
        ({"s3_bucket": "Bad_Bucket"}, "Invalid s3_bucket='Bad_Bucket'"),
    ],
)
def test_bad_arguments_fail_at_dag_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SesExportInputError, match=message):
        make(**kwargs)


def test_templated_fields() -> None:
    op = make()
    assert {"job_id", "s3_bucket", "s3_key", "dest"} <= set(op.template_fields)
    assert {"aws_conn_id", "region_name"} <= set(op.template_fields)


def test_literal_destination_is_declared_as_outlet() -> None:
    op = make()
    assert len(op.outlets) == 1
    assert isinstance(op.outlets[0], AssetOrDataset)
    assert op.outlets[0].uri == "s3://my-bucket/ses/x.csv"


def test_literal_dest_uri_is_declared_as_outlet() -> None:
    op = make(s3_bucket=None, s3_key=None, dest="s3://other-bucket/p/q.json")
    assert [o.uri for o in op.outlets] == ["s3://other-bucket/p/q.json"]


def test_templated_destination_declares_no_outlet_unless_given() -> None:
    assert make(s3_key="ses/{{ ds }}.csv").outlets == []
    explicit = AssetOrDataset("s3://my-bucket/ses")
    assert make(s3_key="ses/{{ ds }}.csv", outlets=[explicit]).outlets == [explicit]


def test_templated_values_are_not_validated_before_rendering() -> None:
    op = make(s3_bucket="{{ var.value.bucket }}", s3_key="{{ ds }}.csv")
    assert op.s3_bucket == "{{ var.value.bucket }}"


def test_part_size_grows_to_stay_under_10000_parts() -> None:
    op = make()
    assert op._part_size(None) == 5 * MIB
    assert op._part_size(1024) == 5 * MIB
    assert op._part_size(100 * 1024 * MIB) == 11 * MIB  # 100 GiB / 9,999 parts, rounded up to MiB
    size = 500 * 1024 * MIB
    assert size / op._part_size(size) <= 10_000


def test_extra_link_is_declared_and_registered() -> None:
    op = make()
    assert any(isinstance(link, S3ObjectLink) for link in op.operator_extra_links)
    assert get_provider_info()["extra-links"] == ["airflow_provider_sesexport.links.S3ObjectLink"]


@pytest.mark.parametrize("mapped", [False, True], ids=["task", "mapped-task"])
def test_serialized_task_carries_the_extra_link(mapped: bool) -> None:
    """The DAG processor's serialization finds the link (a property, resolved per task) on plain and mapped copies."""
    import datetime as dt
    import json

    from tests.airflow_names import DAG, serialize_task

    with DAG("link_dag", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)):
        if mapped:
            task = SesExportToS3Operator.partial(task_id="copy", s3_bucket="b", s3_key="k").expand(job_id=["a", "b"])
        else:
            task = make()
    links = json.dumps(serialize_task(task)["_operator_extra_links"])
    assert "S3ObjectLink" in links or "S3 object" in links, links


def test_s3_object_link_format() -> None:
    link = S3ObjectLink().format_link(
        aws_domain="aws.amazon.com", region_name="eu-west-1", bucket_name="bkt", key=console_key("a b/c+d.csv")
    )
    assert link == "https://console.aws.amazon.com/s3/object/bkt?region=eu-west-1&prefix=a%20b/c%2Bd.csv"


def test_openlineage_is_not_imported_with_the_operator() -> None:
    code = (
        "import sys\n"
        "from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator\n"
        "SesExportToS3Operator(task_id='t', job_id='j', s3_bucket='bkt', s3_key='k')\n"
        "bad = [m for m in sys.modules if 'openlineage' in m]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
