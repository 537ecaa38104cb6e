"""
The reader of the real export layouts, on bytes built here from the layout contract (no emulator).

Builders write each layout as real SES does: Message Insights CSV fully quoted with a trailing comma
on every line, Message Insights JSON as a multi-line array with leading commas, metrics CSV wide with
four decimals and minimal quoting, metrics JSON as a one-line array with nested ``metrics``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_sesexport.exceptions import SesExportJobError, SesExportRecordsError
from airflow_provider_sesexport.records import RecordCounter, count_records, iter_records

UTC = dt.timezone.utc
INSIGHTS_COLUMNS = (
    "messageid",
    "sendtimestamp",
    "isp",
    "fromaddress",
    "destination",
    "subject",
    "last_delivery_event",
    "last_engagement_event",
    "last_delivery_event_timestamp",
    "last_engagement_event_timestamp",
    "bounce_sub_type",
    "diagnostic_code",
)
INSIGHTS_ROWS: list[dict[str, str]] = [
    {
        "messageid": "0100018a-0001",
        "sendtimestamp": "2026-09-23 14:05:07.123 UTC",
        "isp": "Gmail",
        "fromaddress": "news@example.com",
        "destination": "alice@example.com",
        "subject": 'Sale, "50%" off\nthis week, only',
        "last_delivery_event": "DELIVERY",
        "last_engagement_event": "OPEN",
        "last_delivery_event_timestamp": "2026-09-23 14:05:08.000 UTC",
        "last_engagement_event_timestamp": "2026-09-23 15:00:00.999 UTC",
        "bounce_sub_type": "",
        "diagnostic_code": "",
    },
    {
        "messageid": "0100018a-0002",
        "sendtimestamp": "2026-09-23 14:05:07.123 UTC",
        "isp": "Yahoo",
        "fromaddress": "news@example.com",
        "destination": "bob@example.org",
        "subject": "",
        "last_delivery_event": "PERMANENT_BOUNCE",
        "last_engagement_event": "",
        "last_delivery_event_timestamp": "2026-09-23 14:05:09.500 UTC",
        "last_engagement_event_timestamp": "",
        "bounce_sub_type": "General",
        "diagnostic_code": 'smtp; 550 5.1.1 <bob@example.org>: "user" unknown, {closed}',
    },
    {
        "messageid": "0100018a-0003",
        "sendtimestamp": "2026-09-24 00:00:00.000 UTC",
        "isp": "Other",
        "fromaddress": "news@example.com",
        "destination": "carol@example.net",
        "subject": "\\ back\\slash [x] {y} ,\r\n\n",
        "last_delivery_event": "SEND",
        "last_engagement_event": "",
        "last_delivery_event_timestamp": "",
        "last_engagement_event_timestamp": "",
        "bounce_sub_type": "",
        "diagnostic_code": "",
    },
]
METRICS = ("SEND_VOLUME", "DELIVERY_RATE", "COMPLAINT_RATE")
# With ISP "*", real SES lists every ISP it knows, zeros included.
METRICS_ROWS: list[dict[str, Any]] = [
    {"ISP": "Gmail", "SEND_VOLUME": 120.0, "DELIVERY_RATE": 0.9833, "COMPLAINT_RATE": 0.0008},
    {"ISP": "Yahoo", "SEND_VOLUME": 40.0, "DELIVERY_RATE": 0.975, "COMPLAINT_RATE": 0.0},
    {"ISP": "Comcast", "SEND_VOLUME": 0.0, "DELIVERY_RATE": 0.0, "COMPLAINT_RATE": 0.0},
    {"ISP": "Hotmail, Outlook", "SEND_VOLUME": 0.0, "DELIVERY_RATE": 0.0, "COMPLAINT_RATE": 0.0},
]


# -- builders (the layouts of the contract) ------------------------------------------------------------
def quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def insights_csv(rows: list[dict[str, str]] = INSIGHTS_ROWS, newline: str = "\n") -> bytes:
    lines = ["".join(quoted(name) + "," for name in INSIGHTS_COLUMNS)]
    lines += ["".join(quoted(row[name]) + "," for name in INSIGHTS_COLUMNS) for row in rows]
    return "".join(line + newline for line in lines).encode()


def json_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped + '"'


def insights_json(rows: list[dict[str, str]] = INSIGHTS_ROWS) -> bytes:
    objects = [
        "{" + ",".join(f"{json_string(k)}:{json_string(v)}" for k, v in row.items() if v != "") + "}" for row in rows
    ]
    return ("[\n" + "".join(("," if i else "") + obj + "\n" for i, obj in enumerate(objects)) + "]").encode()


def minimal(value: str) -> str:
    return quoted(value) if any(c in value for c in ',"\n\r') else value


def metrics_csv(rows: list[dict[str, Any]] = METRICS_ROWS, dimension: str = "ISP") -> bytes:
    lines = [",".join([dimension, *METRICS])]
    lines += [",".join([minimal(row["ISP"]), *(f"{row[m]:.4f}" for m in METRICS)]) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def metrics_json(rows: list[dict[str, Any]] = METRICS_ROWS) -> bytes:
    objects = [
        '{"isp":' + json_string(row["ISP"]) + ',"metrics":{' + ",".join(f'"{m}":{row[m]:.4f}' for m in METRICS) + "}}"
        for row in rows
    ]
    return ("[" + ",".join(objects) + "]").encode()


def expected_insights(row: dict[str, str], omit_empty: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value == "" and omit_empty:
            continue
        if value and key.endswith("timestamp"):
            out[key] = dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f UTC").replace(tzinfo=UTC)
        else:
            out[key] = value or None
    return out


LAYOUTS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "insights-csv": (insights_csv, "MESSAGE_INSIGHTS", "CSV"),
    "insights-json": (insights_json, "MESSAGE_INSIGHTS", "JSON"),
    "metrics-csv": (metrics_csv, "METRICS_DATA", "CSV"),
    "metrics-json": (metrics_json, "METRICS_DATA", "JSON"),
}


def split(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


# -- each layout, normalised ------------------------------------------------------------------------------
def test_message_insights_csv() -> None:
    records = list(iter_records(insights_csv(), source_type="MESSAGE_INSIGHTS", data_format="CSV"))
    assert records == [expected_insights(row) for row in INSIGHTS_ROWS]
    assert all(list(r) == list(INSIGHTS_COLUMNS) for r in records)  # the unnamed 13th column is gone
    first = records[0]
    assert first["subject"] == 'Sale, "50%" off\nthis week, only'
    assert first["sendtimestamp"] == dt.datetime(2026, 9, 23, 14, 5, 7, 123000, tzinfo=UTC)
    assert first["sendtimestamp"].tzinfo is UTC
    assert records[1]["last_engagement_event_timestamp"] is None and records[1]["subject"] is None
    assert records[2]["subject"] == "\\ back\\slash [x] {y} ,\r\n\n"


def test_message_insights_csv_with_crlf_line_ends() -> None:
    assert list(iter_records(insights_csv(newline="\r\n"))) == [expected_insights(row) for row in INSIGHTS_ROWS]
    assert count_records(insights_csv(newline="\r\n")) == len(INSIGHTS_ROWS)


def test_message_insights_json_with_leading_commas() -> None:
    data = insights_json()
    assert data.startswith(b"[\n{") and b"\n,{" in data and data.endswith(b"}\n]")
    assert b'"bounce_sub_type"' not in data.splitlines()[1]  # members without a value are omitted in the file
    records = list(iter_records(data, source_type="MESSAGE_INSIGHTS", data_format="JSON"))
    assert records == [expected_insights(row) for row in INSIGHTS_ROWS]
    assert records[0]["bounce_sub_type"] is None  # ... and None in the record, as from CSV
    assert records[1]["diagnostic_code"] == 'smtp; 550 5.1.1 <bob@example.org>: "user" unknown, {closed}'
    # whitespace around a line's value and after its leading comma is JSON whitespace, not part of the value; a
    # byte order mark before a value is dropped, as json.loads drops it
    assert list(iter_records(data.replace(b"\n,{", b"\n,\xef\xbb\xbf{"))) == records
    spaced = data.replace(b"\n,{", b"\n \t, {").replace(b"}\n", b"} \r\n")
    assert spaced != data and list(iter_records(spaced, source_type="MESSAGE_INSIGHTS", data_format="JSON")) == records


def test_a_message_insights_record_has_the_same_keys_in_either_format() -> None:
    """The JSON file omits members without a value; its records still hold every column, as the CSV's do."""
    rows = [dict(row, messageid=f"{row['messageid']}-{i}") for i, row in enumerate(INSIGHTS_ROWS * 2)]
    from_csv = list(iter_records(insights_csv(rows)))
    from_json = list(iter_records(insights_json(rows)))
    assert from_json == from_csv
    assert all(list(r) == list(INSIGHTS_COLUMNS) for r in from_csv + from_json)
    assert [r["diagnostic_code"] for r in from_json] == [row["diagnostic_code"] or None for row in rows]
    # A column the CSV file lacks is a key too; a member only the JSON file has is kept.
    csv_without_subject = b'"messageid","isp",\n"m-1","Gmail",\n'
    (record,) = iter_records(csv_without_subject)
    assert record == {**dict.fromkeys(INSIGHTS_COLUMNS), "messageid": "m-1", "isp": "Gmail"}
    (record,) = iter_records(b'{"messageid":"m-1","future_column":"x"}\n')
    assert record == {**dict.fromkeys(INSIGHTS_COLUMNS), "messageid": "m-1", "future_column": "x"}
    # A column in another case stands for its column: no second key with None.
    (record,) = iter_records(b'"MESSAGEID","isp",\n"m-1","Gmail",\n')
    assert record == {**dict.fromkeys(INSIGHTS_COLUMNS[1:]), "MESSAGEID": "m-1", "isp": "Gmail"}
    (record,) = iter_records(b'{"MESSAGEID":"m-1","isp":"Gmail"}\n')
    assert record == {**dict.fromkeys(INSIGHTS_COLUMNS[1:]), "MESSAGEID": "m-1", "isp": "Gmail"}


def test_metrics_csv_values_are_floats_zero_rows_kept() -> None:
    data = metrics_csv()
    assert b"Gmail,120.0000,0.9833,0.0008\n" in data and b'"Hotmail, Outlook",0.0000' in data
    records = list(iter_records(data, source_type="METRICS_DATA", data_format="CSV"))
    assert records == METRICS_ROWS
    assert all(type(r[m]) is float for r in records for m in METRICS)


@pytest.mark.parametrize("spelling", ["IDENTITY", "EMAIL_IDENTITY"])
def test_metrics_csv_identity_column_has_one_key(spelling: str) -> None:
    data = f"{spelling},SEND_VOLUME,DELIVERY_RATE\nexample.com,120.0000,0.9833\n".encode()
    assert list(iter_records(data)) == [
        {"EMAIL_IDENTITY": "example.com", "SEND_VOLUME": 120.0, "DELIVERY_RATE": 0.9833}
    ]


def test_metrics_csv_empty_value_is_none() -> None:
    data = b"ISP,CONFIGURATION_SET,SEND_VOLUME\nGmail,,\n"
    assert list(iter_records(data)) == [{"ISP": "Gmail", "CONFIGURATION_SET": None, "SEND_VOLUME": None}]


def test_metrics_json_keeps_its_shape() -> None:
    data = metrics_json()
    assert data.count(b"\n") == 0 and b'{"isp":"Gmail","metrics":{"SEND_VOLUME":120.0000,' in data
    records = list(iter_records(data, source_type="METRICS_DATA", data_format="JSON"))
    assert records == [{"isp": r["ISP"], "metrics": {m: r[m] for m in METRICS}} for r in METRICS_ROWS]
    assert all(type(v) is float for r in records for v in r["metrics"].values())


def test_metrics_json_integer_and_null_metrics() -> None:
    data = b'[{"isp":"Gmail","metrics":{"SEND_VOLUME":120,"DELIVERY_RATE":null}}]'
    (record,) = iter_records(data)
    assert record == {"isp": "Gmail", "metrics": {"SEND_VOLUME": 120.0, "DELIVERY_RATE": None}}
    assert type(record["metrics"]["SEND_VOLUME"]) is float


def test_json_lines_file_is_read_too() -> None:
    data = b'{"messageid":"a"}\n{"messageid":"b"}\n'
    assert [r["messageid"] for r in iter_records(data)] == ["a", "b"]
    assert count_records(data) == 2


# -- layout detection -------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("told", ["nothing", "format", "source", "both"])
def test_layout_from_the_job_or_the_content(layout: str, told: str) -> None:
    build, source_type, data_format = LAYOUTS[layout]
    kwargs: dict[str, str] = {}
    if told in ("format", "both"):
        kwargs["data_format"] = data_format.lower()  # the job's words, any case
    if told in ("source", "both"):
        kwargs["source_type"] = source_type
    reference = list(iter_records(build(), source_type=source_type, data_format=data_format))
    assert len(reference) == (len(INSIGHTS_ROWS) if source_type == "MESSAGE_INSIGHTS" else len(METRICS_ROWS))
    assert list(iter_records(build(), **kwargs)) == reference


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_split_gives_the_same_records(layout: str) -> None:
    """The file cut into chunks of 1..N bytes, and cut once at every byte boundary."""
    data = LAYOUTS[layout][0]()
    reference = list(iter_records(data))
    for size in range(1, 65):
        assert list(iter_records(split(data, size))) == reference, size
        assert count_records(split(data, size)) == len(reference), size
    for cut in range(len(data) + 1):
        assert list(iter_records(iter([data[:cut], data[cut:]]))) == reference, cut
        assert count_records(iter([data[:cut], data[cut:]])) == len(reference), cut


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gzip_input_is_decompressed(layout: str) -> None:
    data = LAYOUTS[layout][0]()
    reference = list(iter_records(data))
    packed = gzip.compress(data)
    for size in (1, 2, 3, 7, 64, len(packed)):
        assert list(iter_records(split(packed, size))) == reference, size
        assert count_records(split(packed, size)) == len(reference), size
    # Concatenated gzip members (what appending to a .gz gives) are one file.
    half = len(data) // 2
    members = gzip.compress(data[:half]) + gzip.compress(data[half:])
    assert list(iter_records(split(members, 5))) == reference
    assert count_records(members) == len(reference)


def test_highly_compressed_gzip_in_any_split() -> None:
    """A compressed byte can stand for many content bytes: nothing is lost, whatever the split."""
    data = b"ISP,SEND_VOLUME\n" + b"Gmail,1.0000\n" * 50_000
    compressor = zlib.compressobj(9, wbits=31)
    packed = compressor.compress(data) + compressor.flush()
    assert len(packed) < len(data) // 100
    for size in (1, 7, len(packed)):
        assert count_records(split(packed, size)) == 50_000, size
    assert sum(1 for _ in iter_records(split(packed, 1))) == 50_000


def test_truncated_gzip_is_an_error() -> None:
    packed = gzip.compress(insights_csv())
    with pytest.raises(SesExportRecordsError, match="truncated gzip"):
        list(iter_records(packed[:-12]))


def test_binary_file_object_and_bom() -> None:
    data = b"\xef\xbb\xbf" + metrics_csv()
    assert list(iter_records(io.BytesIO(data))) == METRICS_ROWS
    assert list(iter_records(split(data, 1))) == METRICS_ROWS
    assert count_records(io.BytesIO(data)) == len(METRICS_ROWS)


@pytest.mark.parametrize(
    "data",
    [b"", b"  \n", b"[]", b"[\n]\n", insights_csv([]), b"ISP,SEND_VOLUME\n"],
    ids=["empty", "blank", "empty-array", "empty-array-lines", "insights-header", "metrics-header"],
)
def test_no_records(data: bytes) -> None:
    assert list(iter_records(data)) == []
    assert count_records(data) == 0


def test_last_line_without_newline_and_blank_lines() -> None:
    data = b"ISP,SEND_VOLUME\n\nGmail,1.0000\n\nYahoo,2.0000"
    assert [r["ISP"] for r in iter_records(data)] == ["Gmail", "Yahoo"]
    assert count_records(data) == 2


def test_counter_counts_as_chunks_arrive() -> None:
    counter = RecordCounter()
    data = metrics_csv()
    for piece in split(data, 10):
        counter.update(piece)
    assert counter.records == len(METRICS_ROWS)


def test_stopping_early_reads_no_further() -> None:
    pulled = []

    def chunks() -> Iterator[bytes]:
        for piece in split(insights_json(), 16):
            pulled.append(piece)
            yield piece

    source = chunks()
    records = iter_records(source)
    assert next(records)["messageid"] == "0100018a-0001"
    records.close()
    assert len(pulled) < len(insights_json()) // 16
    assert next(source)  # the caller's iterator is the caller's to close


# -- layouts it does not know: a typed error naming the cause ---------------------------------------------
@pytest.mark.parametrize(
    ("data", "kwargs", "cause"),
    [
        (metrics_csv(), {"data_format": "JSON"}, "says DataFormat JSON"),
        (metrics_json(), {"data_format": "CSV"}, "says DataFormat CSV"),
        (metrics_csv(), {"source_type": "MESSAGE_INSIGHTS"}, "no messageid column"),
        (insights_csv(), {"source_type": "METRICS_DATA"}, "no <METRIC>_<AGGREGATION> column"),
        (metrics_json(), {"source_type": "MESSAGE_INSIGHTS"}, "first JSON record has no messageid"),
        (insights_json(), {"source_type": "METRICS_DATA"}, "no metrics object"),
        (b"date,dimension_name,value\n2026-09-23,ISP,1\n", {}, "neither Message Insights"),
        (b'[{"date":"2026-09-23"}]', {}, "neither Message Insights"),
        (b"[1, 2]", {}, "is not an object"),
        (b'[{"messageid":"a"} {"messageid":"b"}]', {}, "line 1 is not valid JSON (Expecting ',' delimiter"),
        (b'[\n{"messageid":"a"}\n{"messageid":"b"}\n]', {}, "expected ',' or ']' at the start of line 3"),
        (b'[{"messageid":"a"}]   x', {}, "line 1 is not valid JSON (Extra data at column 23)"),  # as json.loads
        (b'[\n{"messageid":"a"}\n,\x0b{"messageid":"b"}\n]', {}, "line 3 is not valid JSON (Expecting value"),
        (b'[{"messageid":"a"}]\n x', {}, "data after the closing ']' on line 2"),
        (b'[\n{"messageid":"a"}\n]\n{"messageid":"b"}\n', {}, "data after the closing ']' on line 4"),
        (b'{"messageid":"a"}\n{"messageid":"b"', {}, "line 2 is not valid JSON"),
        (b'[\n{"messageid":"a"}\n,{"messageid":"b"}\n', {}, "not closed"),
        (b'[\n{"messageid":"a"}\n,{"messageid":"b', {}, "line 3 is not valid JSON (Unterminated string"),
        (b'{"messageid":"a"}\t [', {}, "line 1 is not valid JSON (Extra data at column 20)"),
        (b'{"messageid":"a"}\n[1]\n', {}, "an element on line 2 is not an object (it is list)"),
        (b"ISP,SEND_VOLUME\nGmail,1.0000,3\n", {}, "Line 2 of the export file has 3 fields, the header has 2"),
        (b"ISP,SEND_VOLUME\nGmail,lots\n", {}, "not a number"),
        (b'[{"isp":"Gmail","metrics":{"SEND_VOLUME":true}}]', {}, "not a number"),
        (b'[{"isp":"Gmail","metrics":{}},{"isp":"Yahoo","metrics":3}]', {}, "metrics is not an object"),
        (b"ISP,,SEND_VOLUME\nGmail,,1\n", {}, "unnamed column"),
        (b"ISP,ISP,SEND_VOLUME\n", {}, "names a column twice"),
        (b"IDENTITY,EMAIL_IDENTITY,SEND_VOLUME\n", {}, "names a column twice"),
        (b"ISP,SEND_VOLUME\n\xff\xfe,1\n", {}, "not UTF-8"),
        (b'[{"messageid":"\xff"}]', {}, "not UTF-8"),
        (b"\x1f\x8bnot gzip at all", {}, "not valid gzip"),
        (metrics_csv(), {"data_format": "PARQUET"}, "data_format='PARQUET'"),
        (metrics_csv(), {"source_type": "LOGS"}, "source_type='LOGS'"),
    ],
)
def test_unknown_layout_is_a_typed_error(data: bytes, kwargs: dict[str, str], cause: str) -> None:
    with pytest.raises(SesExportRecordsError) as info:
        list(iter_records(data, **kwargs))
    assert cause in str(info.value)
    assert isinstance(info.value, SesExportJobError)


def test_bad_timestamp_names_line_and_value() -> None:
    row = dict(INSIGHTS_ROWS[0], sendtimestamp="yesterday")
    with pytest.raises(SesExportRecordsError, match=r"Line 3 of the export file: not a timestamp: 'yesterday'"):
        list(iter_records(insights_csv([INSIGHTS_ROWS[1], row])))


def test_value_in_the_unnamed_column_is_an_error() -> None:
    data = insights_csv()[:-1] + b'"surprise"\n'
    with pytest.raises(SesExportRecordsError, match="a value in the unnamed last column") as info:
        list(iter_records(data))
    assert "surprise" not in str(info.value) and "example" not in str(info.value)


def test_unbalanced_quote_is_an_error_not_a_huge_field() -> None:
    data = b'ISP,SEND_VOLUME\n"Gmail,1.0000\n' + b"Yahoo,2.0000\n" * 20_000
    with pytest.raises(SesExportRecordsError, match="not valid CSV"):
        list(iter_records(data))


@pytest.mark.parametrize(
    "data",
    [
        b'[{"messageid":"' + b"x" * 500 + b'"}]',  # a metrics-style one-line array
        b'[\n{"messageid":"a"}\n,{"messageid":"' + b"x" * 500 + b'"}\n]\n',  # one object per line
        b'{"messageid":"' + b"x" * 500 + b'"}\n',
    ],
    ids=["one-line-array", "array-of-lines", "object-lines"],
)
def test_oversized_json_line_is_an_error(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    import airflow_provider_sesexport.records as records

    monkeypatch.setattr(records, "MAX_JSON_LINE_BYTES", 100)
    with pytest.raises(SesExportRecordsError, match="is longer than 100 bytes"):
        list(iter_records(split(data, 10)))
    with pytest.raises(SesExportRecordsError, match="is longer than 100 bytes"):
        count_records(data)


# -- constant memory --------------------------------------------------------------------------------------
FILE_BYTES = 200 * 1024 * 1024
PEAK_BOUND = 16 * 1024 * 1024
LONG = "smtp; 550 5.1.1 mailbox unavailable, " * 100  # wide rows: the test is about bytes, not row count
BIG_ROWS = {
    "insights-csv": (
        insights_csv([]),
        insights_csv([dict(INSIGHTS_ROWS[0], diagnostic_code=LONG)])[len(insights_csv([])) :],
        b"",
    ),
    "insights-json": (
        b'[\n{"messageid":"first"}\n',
        b',{"messageid":"m","sendtimestamp":"2026-09-23 14:05:07.123 UTC","diagnostic_code":"'
        + LONG.encode()
        + b'"}\n',
        b"]\n",
    ),
    "metrics-csv": (b"EMAIL_IDENTITY,SEND_VOLUME\n", b'"' + LONG.encode() + b'",120.0000\n', b""),
}
#: A metrics JSON export is one line, parsed whole: its length is bounded instead (records.MAX_JSON_LINE_BYTES).
ONE_LINE_METRICS = (
    b'[{"isp":"first","metrics":{}}',
    b',{"email_identity":"' + LONG.encode() + b'","metrics":{"SEND_VOLUME":120.0000,"DELIVERY_RATE":0.9833}}',
    b"]",
)


def generated(head: bytes, row: bytes, tail: bytes, size: int) -> tuple[Callable[[], Iterator[bytes]], int]:
    """A file of about ``size`` bytes (head, repeated rows, tail) as a generator, and its row count."""
    block = row * max(1, (1024 * 1024) // len(row))
    blocks = size // len(block)
    rows = blocks * (len(block) // len(row)) + head.count(b"first")

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(blocks):
            yield block
        yield tail

    return chunks, rows


@pytest.mark.parametrize("layout", BIG_ROWS)
def test_large_file_in_flat_memory(layout: str) -> None:
    chunks, rows = generated(*BIG_ROWS[layout], size=FILE_BYTES)
    tracemalloc.start()
    try:
        seen = sum(1 for _ in iter_records(chunks()))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        counted = count_records(chunks())
        _, count_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == counted == rows
    assert peak < PEAK_BOUND, f"{peak} bytes traced for a {FILE_BYTES}-byte file"
    assert count_peak < PEAK_BOUND, f"{count_peak} bytes traced for a {FILE_BYTES}-byte file"


def test_one_line_metrics_json_is_read_whole_up_to_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-line array within the bound is read; a 200 MB line is refused having held no more than the bound."""
    import airflow_provider_sesexport.records as records

    chunks, rows = generated(*ONE_LINE_METRICS, size=8 * 1024 * 1024)
    assert sum(1 for _ in iter_records(chunks())) == count_records(chunks()) == rows
    monkeypatch.setattr(records, "MAX_JSON_LINE_BYTES", 4 * 1024 * 1024)
    chunks, _ = generated(*ONE_LINE_METRICS, size=FILE_BYTES)
    tracemalloc.start()
    try:
        with pytest.raises(SesExportRecordsError, match=f"line 1 is longer than {4 * 1024 * 1024} bytes"):
            count_records(chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BOUND


def test_large_gzip_file_in_flat_memory() -> None:
    """Highly compressible: about 200 MB out of a few hundred KB in, still decompressed in bounded steps."""
    chunks, rows = generated(*BIG_ROWS["metrics-csv"], size=FILE_BYTES)

    def packed() -> Iterator[bytes]:
        compressor = zlib.compressobj(1, wbits=31)
        for chunk in chunks():
            if out := compressor.compress(chunk):
                yield out
        yield compressor.flush()

    compressed = list(packed())
    tracemalloc.start()
    try:
        seen = sum(1 for _ in iter_records(iter(compressed)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count_records(iter(compressed)) == rows
    assert peak < PEAK_BOUND
