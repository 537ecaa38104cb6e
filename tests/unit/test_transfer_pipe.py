"""RecordCounter and ChunkReader: the pieces between the download and boto3's managed upload."""

from __future__ import annotations

import gzip
import io
import threading
import tracemalloc
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_sesexport.exceptions import SesExportRecordsError
from airflow_provider_sesexport.records import RecordCounter
from airflow_provider_sesexport.transfers._pipe import ChunkReader, gzip_transform


def count(data: bytes, data_format: str, chunk: int = 7) -> int:
    counter = RecordCounter(data_format=data_format)
    for i in range(0, len(data), chunk):
        counter.update(data[i : i + chunk])
    return counter.records


@pytest.mark.parametrize("chunk", [1, 3, 64, 10_000])
def test_csv_counts_rows_minus_header(chunk: int) -> None:
    data = b"ISP,SEND_VOLUME\nGmail,2\nYahoo,4\nOther,6\n"
    assert count(data, "CSV", chunk) == 3


def test_csv_newline_inside_quotes_is_not_a_record() -> None:
    data = b'messageid,subject\n1,"hello\nworld"\n2,"a ""quoted"" \n value"\n3,plain\n'
    for chunk in (1, 2, 5, 1000):
        assert count(data, "CSV", chunk) == 3


def test_final_line_without_newline_counts() -> None:
    assert count(b"ISP,SEND_VOLUME\nGmail,2\nYahoo,4", "CSV") == 2
    assert count(b'{"messageid":1}\n{"messageid":2}', "JSON") == 2


def test_trailing_padding_after_last_newline_is_not_a_record() -> None:
    assert count(b'{"messageid":1}   \n{"messageid":2}   \n', "JSON") == 2
    assert count(b'{"messageid":1}\n   ', "JSON") == 1


def test_empty_and_header_only() -> None:
    assert count(b"", "CSV") == 0
    assert count(b"ISP,SEND_VOLUME\n", "CSV") == 0
    assert count(b"", "JSON") == 0


def test_gzip_file_is_counted_decompressed() -> None:
    raw = b"ISP,SEND_VOLUME\n" + b"x,1\n" * 50_000
    assert count(gzip.compress(raw), "CSV", chunk=4096) == 50_000


def test_a_file_the_parser_refuses_is_an_error_and_feeding_never_blocks() -> None:
    """The counting thread stops parsing at the error but keeps taking chunks, so the copy never waits on it."""
    counter = RecordCounter(data_format="CSV", max_pending=1)
    counter.update(b"ISP,SEND_VOLUME\nGmail,1,surplus\n")
    for _ in range(50):  # far more than the queue holds
        counter.update(b"Yahoo,2\n")
    with pytest.raises(SesExportRecordsError, match="has 3 fields, the header has 2"):
        _ = counter.records
    assert not counter._thread.is_alive()


def test_closing_early_ends_the_thread() -> None:
    counter = RecordCounter()
    counter.update(b"ISP,SEND_VOLUME\nGmail,1\n")
    counter.close()
    assert not counter._thread.is_alive()
    with pytest.raises(ValueError, match="no more chunks"):
        counter.update(b"Yahoo,2\n")


@given(rows=st.lists(st.text(alphabet='ab," \n', max_size=12), max_size=30), chunk=st.integers(1, 50))
def test_csv_count_matches_the_csv_module(rows: list[str], chunk: int) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["messageid", "subject"])
    for row in rows:
        writer.writerow([row, 1])
    data = buffer.getvalue().encode()
    assert count(data, "CSV", chunk) == len(rows)


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def reader(chunks: Iterable[bytes], **kwargs: Any) -> tuple[io.BufferedReader, ChunkReader]:
    """The file the operator hands to ``upload_fileobj``, and the adapter under it."""
    raw = ChunkReader(chunks, **kwargs)
    return io.BufferedReader(raw), raw


@pytest.mark.parametrize("read_size", [1, 5, 100, 999, 1000, 1001, 5 * 1024 * 1024])
def test_reader_reads_exact_sizes_until_eof(read_size: int) -> None:
    data = bytes(range(256)) * 1000
    body, raw = reader(chunks_of(data, 1000))
    out = bytearray()
    while True:
        piece = body.read(read_size)
        if not piece:
            break
        if len(out) + len(piece) < len(data):
            assert len(piece) == read_size  # short reads only at the end
        out += piece
    assert bytes(out) == data
    assert raw.bytes_out == len(data)
    assert body.read(read_size) == b""  # EOF stays EOF
    assert not body.seekable() and body.readable()
    assert not raw.seekable() and raw.readable()


def test_reader_is_a_non_seekable_source_for_s3transfer() -> None:
    from s3transfer.upload import UploadNonSeekableInputManager, UploadSeekableInputManager

    body, _ = reader([b"x"])
    assert UploadNonSeekableInputManager.is_compatible(body)
    assert not UploadSeekableInputManager.is_compatible(body)


def test_readinto_returns_at_most_one_chunk_and_zero_only_at_eof() -> None:
    raw = ChunkReader(iter([b"abc", b"", b"defg"]))
    buffer = bytearray(10)
    assert raw.readinto(buffer) == 3 and buffer[:3] == b"abc"
    assert raw.readinto(memoryview(buffer)[:2]) == 2 and buffer[:2] == b"de"  # an empty chunk is skipped
    assert raw.readinto(buffer) == 2 and buffer[:2] == b"fg"
    assert raw.readinto(buffer) == 0
    assert raw.readinto(buffer) == 0


def test_reader_read_all() -> None:
    body, _ = reader(chunks_of(b"abcdef" * 10, 4))
    assert body.read() == b"abcdef" * 10
    assert body.read(10) == b""


def test_empty_source_is_eof_at_once() -> None:
    body, raw = reader(iter([]))
    assert body.read(5) == b""
    assert raw.bytes_out == 0


def test_reader_transform_and_finish_run_in_order() -> None:
    compress, flush = gzip_transform()
    data = b"row\n" * 10_000
    body, _ = reader(chunks_of(data, 333), transform=compress, finish=flush)
    assert zlib.decompress(body.read(), wbits=31) == data


def test_finish_runs_once_after_every_chunk_was_transformed() -> None:
    calls: list[str] = []

    def transform(chunk: bytes) -> bytes:
        calls.append(f"t:{chunk.decode()}")
        return chunk.upper()

    def finish() -> bytes:
        calls.append("finish")
        return b"!"

    body, raw = reader(iter([b"ab", b"cd"]), transform=transform, finish=finish)
    assert body.read(2) == b"AB"
    assert calls == ["t:ab"]  # pulled only as it is read
    assert body.read() == b"CD!"
    assert body.read() == b""
    assert calls == ["t:ab", "t:cd", "finish"]
    assert raw.bytes_out == 5


def test_error_in_source_is_raised_by_read_after_data() -> None:
    error = RuntimeError("connection lost for good")

    def broken() -> Iterator[bytes]:
        yield b"abc"
        raise error

    body, raw = reader(broken())
    assert body.read(3) == b"abc"
    with pytest.raises(RuntimeError, match="for good") as first:
        body.read(3)
    assert first.value is error
    with pytest.raises(RuntimeError):
        body.read(3)
    assert raw.error is error


def test_error_from_finish_fails_the_read_at_eof() -> None:
    def finish() -> bytes:
        raise ValueError("record count mismatch")

    body, raw = reader(chunks_of(b"x" * 10, 5), finish=finish)
    with pytest.raises(ValueError, match="mismatch"):
        body.read()
    assert isinstance(raw.error, ValueError)


def test_close_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            while True:
                yield b"x" * 1024
        finally:
            closed.set()

    body, raw = reader(endless())
    assert body.read(10) == b"x" * 10
    body.close()
    assert closed.is_set() and raw.closed


def test_memory_stays_bounded_by_one_read_plus_one_chunk() -> None:
    chunk, part, total = 1024 * 1024, 5 * 1024 * 1024, 64 * 1024 * 1024
    pulled = 0

    def source() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(total // chunk):
            pulled += 1
            yield b"x" * chunk

    body, raw = reader(source())
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        while piece := body.read(part):
            assert pulled <= -(-raw.bytes_out // chunk) + 1  # no read-ahead beyond the current chunk
            del piece
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raw.bytes_out == total
    assert peak < part + 2 * chunk + 256 * 1024, peak


def test_upload_fileobj_gets_the_original_error_and_aborts() -> None:
    """s3transfer reading the reader: the source's error reaches the caller, the upload is aborted."""
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    part_uploaded = threading.Event()
    client.meta.events.register("after-call.s3.UploadPart", lambda **_: part_uploaded.set())
    stubber = Stubber(client)  # in this order, or the stubber fails the call
    stubber.add_response("create_multipart_upload", {"UploadId": "up-1"})
    stubber.add_response("upload_part", {"ETag": "e1"})
    stubber.add_response("abort_multipart_upload", {}, {"Bucket": "b", "Key": "k", "UploadId": "up-1"})
    error = ValueError("record count mismatch")
    part = 5 * 1024 * 1024

    def finish() -> bytes:
        part_uploaded.wait(30)  # fail only once the upload exists, so that there is one to abort
        raise error

    body, _ = reader(chunks_of(b"y" * (part + 10), 1024 * 1024), finish=finish)
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=1)
    with stubber, pytest.raises(ValueError) as raised:
        client.upload_fileobj(body, "b", "k", Config=config)
    assert raised.value is error
    stubber.assert_no_pending_responses()  # abort_multipart_upload was called, complete never
