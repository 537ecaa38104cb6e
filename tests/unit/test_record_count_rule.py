"""The one ExportedRecordsCount rule (records.check_record_count), used by the copy and the loader alike."""

from __future__ import annotations

from pathlib import Path

import pytest

import airflow_provider_sesexport
from airflow_provider_sesexport.exceptions import SesExportTransferError
from airflow_provider_sesexport.records import check_record_count


def test_a_count_that_differs_from_exported_records_count_fails_naming_both() -> None:
    job = {"Statistics": {"ProcessedRecordsCount": 9, "ExportedRecordsCount": 41}}
    with pytest.raises(SesExportTransferError, match=r"job 'j-1': the file has 40 records but Statistics\.") as err:
        check_record_count("j-1", job, 40, "not writing s3://b/k")
    assert "ExportedRecordsCount is 41; not writing s3://b/k." in str(err.value)
    assert "AirflowFailException" in [c.__name__ for c in type(err.value).__mro__]  # no retries


@pytest.mark.parametrize(
    "statistics", [{"ProcessedRecordsCount": 9}, {"ExportedRecordsCount": 40}, None, {"ExportedRecordsCount": "x"}]
)
def test_an_equal_or_absent_count_passes(statistics: dict[str, object] | None) -> None:
    check_record_count("j-1", {"Statistics": statistics} if statistics is not None else {}, 40, "unused")


def test_the_rule_is_written_once() -> None:
    package = Path(airflow_provider_sesexport.__file__).parent
    holders = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if "cannot be counted" in p.read_text() or "ExportedRecordsCount is" in p.read_text()
    ]
    assert holders == ["records.py"]


def test_records_that_cannot_be_counted_fail_only_when_ses_gave_a_count() -> None:
    given = {"Statistics": {"ProcessedRecordsCount": 9, "ExportedRecordsCount": 41}}
    with pytest.raises(
        SesExportTransferError, match=r"cannot be counted \(line 3: bad quote\); not writing s3://b/k\.$"
    ):
        check_record_count("j-1", given, None, "not writing s3://b/k", uncounted="line 3: bad quote")
    check_record_count("j-1", {"Statistics": {"ProcessedRecordsCount": 9}}, None, "unused", uncounted="bad quote")
