"""RecordCounter and DownloadPipe: the pieces between the download and boto3's managed upload."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_sesexport.transfers._pipe import DownloadPipe, RecordCounter, gzip_transform


def count(data: bytes, data_format: str, chunk: int = 7) -> int:
    counter = RecordCounter(data_format)
    for i in range(0, len(data), chunk):
        counter.update(data[i : i + chunk])
    return counter.records


@pytest.mark.parametrize("chunk", [1, 3, 64, 10_000])
def test_csv_counts_rows_minus_header(chunk: int) -> None:
    data = b"a,b\n1,2\n3,4\n5,6\n"
    assert count(data, "CSV", chunk) == 3


def test_csv_newline_inside_quotes_is_not_a_record() -> None:
    data = b'id,subject\n1,"hello\nworld"\n2,"a ""quoted"" \n value"\n3,plain\n'
    for chunk in (1, 2, 5, 1000):
        assert count(data, "CSV", chunk) == 3


def test_final_line_without_newline_counts() -> None:
    assert count(b"a,b\n1,2\n3,4", "CSV") == 2
    assert count(b'{"a":1}\n{"a":2}', "JSON") == 2


def test_trailing_padding_after_last_newline_is_not_a_record() -> None:
    assert count(b'{"a":1}   \n{"a":2}   \n', "JSON") == 2
    assert count(b'{"a":1}\n   ', "JSON") == 1


def test_json_lines_have_no_header() -> None:
    assert count(b'{"a":1}\n{"a":2}\n{"a":3}\n', "JSON") == 3


def test_empty_and_header_only() -> None:
    assert count(b"", "CSV") == 0
    assert count(b"a,b\n", "CSV") == 0
    assert count(b"", "JSON") == 0


def test_gzip_file_is_counted_decompressed() -> None:
    raw = b"h\n" + b"x,1\n" * 50_000
    assert count(gzip.compress(raw), "CSV", chunk=4096) == 50_000


@given(rows=st.lists(st.text(alphabet='ab," \n', max_size=12), max_size=30), chunk=st.integers(1, 50))
def test_csv_count_matches_the_csv_module(rows: list[str], chunk: int) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["header"])
    for row in rows:
        writer.writerow([row, 1])
    data = buffer.getvalue().encode()
    assert count(data, "CSV", chunk) == len(rows)


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("read_size", [1, 5, 100, 5 * 1024 * 1024])
def test_pipe_reads_exact_sizes_until_eof(read_size: int) -> None:
    data = bytes(range(256)) * 1000
    pipe = DownloadPipe(chunks_of(data, 1000), max_chunks=2).start()
    out = bytearray()
    while True:
        piece = pipe.read(read_size)
        if not piece:
            break
        if len(out) + len(piece) < len(data):
            assert len(piece) == read_size  # short reads only at the end
        out += piece
    pipe.close()
    assert bytes(out) == data
    assert pipe.bytes_out == len(data)
    assert not pipe.seekable() and pipe.readable()


def test_pipe_read_all() -> None:
    pipe = DownloadPipe(chunks_of(b"abcdef" * 10, 4)).start()
    assert pipe.read() == b"abcdef" * 10
    assert pipe.read(10) == b""
    pipe.close()


def test_pipe_transform_and_finish_run_in_order() -> None:
    compress, flush = gzip_transform()
    data = b"row\n" * 10_000
    pipe = DownloadPipe(chunks_of(data, 333), transform=compress, finish=flush).start()
    stored = pipe.read()
    pipe.close()
    assert zlib.decompress(stored, wbits=31) == data


def test_error_in_source_is_raised_by_read_after_data() -> None:
    def broken() -> Iterator[bytes]:
        yield b"abc"
        raise RuntimeError("connection lost for good")

    pipe = DownloadPipe(broken()).start()
    assert pipe.read(3) == b"abc"
    with pytest.raises(RuntimeError, match="for good"):
        pipe.read(3)
    with pytest.raises(RuntimeError):
        pipe.read(3)
    pipe.close()
    assert isinstance(pipe.error, RuntimeError)


def test_error_from_finish_fails_the_read_at_eof() -> None:
    def finish() -> bytes:
        raise ValueError("record count mismatch")

    pipe = DownloadPipe(chunks_of(b"x" * 10, 5), finish=finish).start()
    with pytest.raises(ValueError, match="mismatch"):
        pipe.read()
    pipe.close()


def test_close_stops_the_producer_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            while True:
                yield b"x" * 1024
        finally:
            closed.set()

    pipe = DownloadPipe(endless(), max_chunks=2).start()
    assert pipe.read(10) == b"x" * 10
    pipe.close()
    assert closed.is_set()
    assert not pipe._thread.is_alive()
