"""Export-file generator properties: size formula, fixed width, any byte range == slice of the whole."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_sesexport.emulator.exportfile import build_export_file

START = datetime(2024, 3, 1, tzinfo=timezone.utc)


def _metrics(days: int) -> dict[str, Any]:
    return {
        "Dimensions": {"ISP": ["Gmail", 'We"ird,%d'], "CONFIGURATION_SET": ["*"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "CLICK", "Aggregation": "RATE"}],
        "StartDate": START,
        "EndDate": START + timedelta(days=days - 1, hours=5),
    }


def _insights(max_results: int) -> dict[str, Any]:
    return {
        "StartDate": START,
        "EndDate": START + timedelta(days=2),
        "MaxResults": max_results,
        "Include": {"Subject": ['100% off, "today"']},
    }


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
    source = _insights(n) if kind == "MESSAGE_INSIGHTS" else _metrics(1 + n % 5)
    export = build_export_file(kind, source, data_format, seed, multiplier)
    whole = export.read_all()
    assert len(whole) == export.size == len(export.header) + export.n_rows * export.row_len
    body = whole[len(export.header) :]
    lines = body.split(b"\n")[:-1]
    assert len(lines) == export.n_rows and {len(line) + 1 for line in lines} == {export.row_len}
    assert all(line.rstrip() == export.render_row(i) for i, line in enumerate(lines))
    first = data.draw(st.integers(0, export.size - 1))
    last = data.draw(st.integers(first, export.size + 5))
    chunk = data.draw(st.integers(1, 4096))
    assert b"".join(export.iter_range(first, last, chunk_bytes=chunk)) == whole[first : last + 1]
    again = build_export_file(kind, source, data_format, seed, multiplier).read_all()
    assert again == whole


def test_vdm_count_and_wildcard_dimension() -> None:
    export = build_export_file("METRICS_DATA", _metrics(3), "CSV", 0)
    # 3 days x (2 ISP values + 3 generated CONFIGURATION_SET values) x 2 metrics
    assert export.n_rows == 3 * 5 * 2
    assert b"configuration_set-0" in export.read_all()


def test_large_file_size_is_computed_without_generating() -> None:
    export = build_export_file("MESSAGE_INSIGHTS", _insights(10000), "CSV", 1, row_multiplier=100_000)
    assert export.n_rows == 1_000_000_000
    assert export.size > 100 * 2**30
    tail = b"".join(export.iter_range(export.size - 3 * export.row_len, export.size - 1))
    assert tail.count(b"\n") == 3 and tail.rstrip().endswith(b"999999999")
