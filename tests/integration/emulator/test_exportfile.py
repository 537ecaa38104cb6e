"""Export-file generator properties: sizes and record counts without materialising, any byte range == slice."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ses_export_emulator.exportfile import build_export_file

START = datetime(2024, 3, 1, tzinfo=timezone.utc)


def _metrics(days: int) -> dict[str, Any]:
    return {
        "Dimensions": {"ISP": ["Gmail", 'We"ird,%d'], "CONFIGURATION_SET": ["*"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "CLICK", "Aggregation": "RATE"}],
        "StartDate": START,
        "EndDate": START + timedelta(days=days),
    }


def _insights(max_results: int, hours: float = 48) -> dict[str, Any]:
    return {
        "StartDate": START,
        "EndDate": START + timedelta(hours=hours),
        "MaxResults": max_results,
        "Include": {"Subject": ['100% off, "today"']},
    }


def records_in(body: bytes, data_format: str) -> int:
    """Records of a file in a real SES layout: CSV rows after the header, or the JSON array's length."""
    if data_format == "CSV":
        return len(list(csv.reader(io.StringIO(body.decode())))) - 1
    return len(json.loads(body))


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["MESSAGE_INSIGHTS", "METRICS_DATA"]),
    data_format=st.sampled_from(["CSV", "JSON"]),
    n=st.integers(1, 40),
    multiplier=st.integers(1, 3),
    seed=st.integers(0, 2**32),
    data=st.data(),
)
def test_ranges_match_the_whole(kind: str, data_format: str, n: int, multiplier: int, seed: int, data: Any) -> None:
    source = (
        _insights(n, hours=data.draw(st.sampled_from([0.0001, 0.01, 1, 48])))
        if kind == "MESSAGE_INSIGHTS"
        else _metrics(n)
    )
    export = build_export_file(kind, source, data_format, seed, multiplier)
    whole = export.read_all()
    assert len(whole) == export.size
    assert records_in(whole, data_format) == export.records
    first = data.draw(st.integers(0, export.size - 1))
    last = data.draw(st.integers(first, export.size + 5))
    chunk = data.draw(st.integers(1, 4096))
    pieces = list(export.iter_range(first, last, chunk_bytes=chunk))
    assert b"".join(pieces) == whole[first : last + 1]
    assert all(len(p) == chunk for p in pieces[:-1])
    again = build_export_file(kind, source, data_format, seed, multiplier).read_all()
    assert again == whole


def test_metrics_wildcard_lists_every_known_value_with_zeros() -> None:
    export = build_export_file("METRICS_DATA", _metrics(3), "CSV", 0)
    rows = list(csv.DictReader(io.StringIO(export.read_all().decode())))
    # 2 ISP values x the 4 configuration sets the account knows; one of them had no traffic
    assert export.records == len(rows) == 2 * 4
    assert {r["CONFIGURATION_SET"] for r in rows} == {"default", "marketing", "transactional", "unused"}
    assert {r["SEND_VOLUME"] for r in rows if r["CONFIGURATION_SET"] == "unused"} == {"0.0000"}
    assert {r["ISP"] for r in rows} == {"Gmail", 'We"ird,%d'}


def test_row_multiplier_repeats_rows_with_fresh_ids() -> None:
    one = build_export_file("MESSAGE_INSIGHTS", _insights(50), "CSV", 3)
    three = build_export_file("MESSAGE_INSIGHTS", _insights(50), "CSV", 3, row_multiplier=3)
    rows = list(csv.reader(io.StringIO(three.read_all().decode())))[1:]
    assert len(rows) == three.records == 3 * one.records
    assert len({r[0] for r in rows}) == 3 * len({r[0] for r in rows[: one.records]})
    assert three.read_all().startswith(one.read_all())


def test_large_file_size_is_computed_without_generating() -> None:
    export = build_export_file("MESSAGE_INSIGHTS", _insights(10000), "CSV", 1, row_multiplier=100_000)
    assert export.records > 1_000_000_000
    assert export.size > 100 * 2**30
    tail = b"".join(export.iter_range(export.size - 5000, export.size - 1))
    last = tail.split(b"\n")[-2]
    assert last.endswith(b'",') and b"-00000001869f-000000" in last  # the id of the last of 100,000 blocks
