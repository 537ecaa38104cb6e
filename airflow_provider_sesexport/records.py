"""
Reading SES export files into records: the four layouts real SES writes, each by one parser on ``csv`` or ``json``.

Real SES writes layouts botocore's model does not describe:

* **Message Insights CSV**: every field double-quoted and followed by a comma, so each line ends
  with ``,`` (a 13th, unnamed, empty column, dropped here). Columns ``messageid``, ``sendtimestamp``,
  ``isp``, ``fromaddress``, ``destination``, ``subject``, ``last_delivery_event``,
  ``last_engagement_event``, ``last_delivery_event_timestamp``, ``last_engagement_event_timestamp``,
  ``bounce_sub_type``, ``diagnostic_code``; timestamps as ``2026-09-23 14:05:07.123 UTC``.
* **Message Insights JSON**: an array, one object per line, leading commas; keys as the CSV
  columns, members without a value omitted.
* **Metrics CSV**: the dimension columns (``ISP``, ``EMAIL_IDENTITY`` ...), then one column per
  metric named ``<METRIC>_<AGGREGATION>`` (``SEND_VOLUME``, ``DELIVERY_RATE`` ...), four decimals.
* **Metrics JSON**: a one-line array of ``{"isp": "Gmail", "metrics": {"SEND_VOLUME": 120.0, ...}}``.

CSV files are read by :mod:`csv`; a JSON file whose first line is a whole array by one :func:`json.loads`, and one
whose first line is ``[`` (or an object) by :func:`json.loads` on each line. Counting
(:func:`count_records`, :class:`RecordCounter`) runs the same parsers without converting values; for CSV, on the
bytes that make rows and fields only (quotes, commas, line ends), which gives the same rows at a third of the cost.

Records are dicts with normalised values: ``""`` becomes ``None``; Message Insights timestamps
(columns whose name ends with ``timestamp``) become timezone-aware UTC datetimes; metric values
become floats. A Message Insights record has every Message Insights column as a key, whichever
format the file is in (``None`` where the file omits the value), plus any other column the file has.
Metrics CSV keys are the header's names, except that a column ``IDENTITY`` (the spelling AWS's sample
loader renames) is always given as ``EMAIL_IDENTITY``; a metrics JSON record keeps its file's shape
(dimension keys in lower case, the nested ``metrics`` object).

The layout comes from the export job when known (``ExportSourceType``, ``DataFormat``) and otherwise
from the content: gzip-compressed input is decompressed on the fly; a file whose first
non-blank line starts with ``[`` or ``{`` is JSON, anything else CSV; Message Insights is told from
metrics by the ``messageid`` column or key, metrics by ``<METRIC>_<AGGREGATION>`` columns or the
``metrics`` object. Anything else raises
:class:`~airflow_provider_sesexport.exceptions.SesExportRecordsError` naming the cause.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import gzip
import io
import json
import queue
import re
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import IO, Any, Protocol, cast

from airflow_provider_sesexport.exceptions import SesExportContentError, SesExportRecordsError, SesExportTransferError
from airflow_provider_sesexport.utils.chunks import GZIP_MAGIC, ChunkReader
from airflow_provider_sesexport.utils.export_job import statistics_of
from airflow_provider_sesexport.utils.export_layout import MESSAGE_INSIGHTS_COLUMNS
from airflow_provider_sesexport.utils.redaction import redact_text

MESSAGE_INSIGHTS = "MESSAGE_INSIGHTS"
METRICS_DATA = "METRICS_DATA"
SOURCE_TYPES = (MESSAGE_INSIGHTS, METRICS_DATA)
DATA_FORMATS = ("CSV", "JSON")

#: The dimensions a metrics export can be broken down by (CSV column names; JSON keys are lower case).
METRICS_DIMENSIONS = ("EMAIL_IDENTITY", "CONFIGURATION_SET", "ISP", "TENANT_NAME")

#: The key a metrics CSV's identity column is given under, whichever spelling the file uses.
IDENTITY_KEY = "EMAIL_IDENTITY"
_IDENTITY_ALIASES = {"IDENTITY": IDENTITY_KEY}

#: Anything :func:`iter_records` and :func:`count_records` read: a binary file object, an iterable
#: of byte chunks (such as :class:`~airflow_provider_sesexport.hooks._download.ExportStream`), or bytes.
Source = IO[bytes] | Iterable[bytes] | bytes | bytearray | memoryview
Record = dict[str, Any]

_READ_SIZE = 1024 * 1024
#: A JSON line (a Message Insights object, or a whole metrics array) may not be longer than this many bytes.
MAX_JSON_LINE_BYTES = 32 * 1024 * 1024

_WHITESPACE = b" \t\r\n"
#: The bytes that make a CSV file's rows and fields (for the csv module's default dialect): counting deletes the
#: others before parsing, so the parser makes empty fields (no string to build) in the same rows. The same rows for
#: well-formed CSV (RFC 4180: a quote only opens a field or doubles inside a quoted one), which SES writes.
_CSV_STRUCTURE = b'",\r\n'
_NOT_CSV_STRUCTURE = bytes(b for b in range(256) if b not in _CSV_STRUCTURE)
# Patterns are strings, compiled on first use (and cached) by ``re``, not when a DAG file imports this module.
_METRIC_COLUMN = r"[A-Z][A-Z0-9_]*_(?:VOLUME|RATE)"


def _chunks(source: Source) -> Iterator[bytes]:
    """The bytes of ``source`` as an iterator of chunks."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
        return
    read = getattr(source, "read", None)
    if callable(read):
        while chunk := read(_READ_SIZE):
            yield chunk
        return
    for chunk in source:  # type: ignore[union-attr]  # not ``yield from``: that would close the caller's iterator
        yield chunk


def _content(source: Source) -> IO[bytes]:
    """The content of ``source`` as a binary file: gunzipped when it starts with gzip's magic bytes."""
    chunks = _chunks(source)
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    content = io.BufferedReader(ChunkReader(chain([head], chunks)), _READ_SIZE)
    if head.startswith(GZIP_MAGIC):
        return cast(IO[bytes], gzip.GzipFile(fileobj=content, mode="rb"))  # members read in bounded steps
    return content


def _first_line(content: IO[bytes]) -> tuple[bytes | None, int]:
    """
    The first line with content (without a byte order mark; at most :data:`MAX_JSON_LINE_BYTES` + 1 bytes).

    :return: the line, or None when there is none, and the line's number.
    """
    number = 0
    while line := content.readline(MAX_JSON_LINE_BYTES + 1):
        if not number:
            line = line.removeprefix(codecs.BOM_UTF8)
        number += 1
        if line.strip():
            return line, number
    return None, number


def _check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.upper() not in choices:
        raise SesExportRecordsError(f"Cannot read an export with {name}={value!r}: expected one of {list(choices)}.")
    return value.upper()


def iter_records(
    source: Source,
    *,
    source_type: str | None = None,
    data_format: str | None = None,
    parse_timestamps: bool = True,
) -> Iterator[Record]:
    """
    Yield the records of an SES export file, one dict per record, in constant memory.

    .. seealso::
        - :func:`count_records`, :meth:`SesExportJobHook.iter_export_records
          <airflow_provider_sesexport.hooks.ses_export.SesExportJobHook.iter_export_records>`

    :param source: a binary file object, an iterable of byte chunks (split anywhere), or bytes;
        gzip-compressed or not. It is read to the end (or until the caller stops), never closed here.
    :param source_type: the job's ``ExportSourceType`` (``MESSAGE_INSIGHTS`` or ``METRICS_DATA``);
        ``None`` to tell it from the header or keys.
    :param data_format: the job's ``DataFormat`` (``CSV`` or ``JSON``); ``None`` to tell it from the content.
    :param parse_timestamps: False keeps Message Insights timestamps as the file's text (``""`` still None), for
        a consumer that has them parsed elsewhere (the SQL loader's COPY into PostgreSQL: the server types them).
    :raises SesExportRecordsError: the content is not one of the layouts (or disagrees with the job).
    """
    timestamp = _timestamp if parse_timestamps else _text
    return _parse(source, source_type, data_format, timestamp)


def count_records(source: Source, *, source_type: str | None = None, data_format: str | None = None) -> int:
    """
    Count the records of an export file (any of the four layouts, gzip or not), parsed as :func:`iter_records` does.

    :param source: a binary file object, an iterable of byte chunks, or bytes.
    :param source_type: the job's ``ExportSourceType``, or ``None`` to tell it from the content.
    :param data_format: the job's ``DataFormat``, or ``None`` to tell it from the content.
    :return: the number of records (CSV rows after the header, JSON objects).
    :raises SesExportRecordsError: as :func:`iter_records`.
    """
    return sum(_parse(source, source_type, data_format, None))


def _parse(
    source: Source, source_type: str | None, data_format: str | None, timestamp: _Converter | None
) -> Iterator[Any]:
    """The records of ``source``; with ``timestamp`` None (counting), numbers of records that add up to the count."""
    source_type = _check_choice("source_type", source_type, SOURCE_TYPES)
    data_format = _check_choice("data_format", data_format, DATA_FORMATS)
    content = _content(source)
    try:
        first, number = _first_line(content)
        if first is None:
            return  # empty (or blank): no records
        kind = "JSON" if first.lstrip()[:1] in (b"[", b"{") else "CSV"
        if data_format is not None and kind != data_format:
            found = f"starts with {first.lstrip()[:1].decode()!r}" if kind == "JSON" else "does not start with [ or {"
            raise SesExportRecordsError(f"The export job says DataFormat {data_format}, but the file {found}.")
        if kind == "JSON":
            yield from _json_records(first, number, content, source_type, timestamp)
            return
        if timestamp is None:  # counting: the parser sees only what makes rows and fields (see _CSV_STRUCTURE)
            read = content.read
            blocks = iter(lambda: read(_READ_SIZE).translate(None, _NOT_CSV_STRUCTURE), b"")
            content = io.BufferedReader(ChunkReader(blocks), _READ_SIZE)
        rest = io.TextIOWrapper(content, encoding="utf-8", newline="")
        yield from _csv_records(chain([first.decode("utf-8")], rest), number - 1, source_type, timestamp)
    except UnicodeDecodeError as exc:
        raise SesExportRecordsError(f"The export file is not UTF-8 text: {exc.reason}.") from None
    except EOFError:
        raise SesExportRecordsError("The export file is truncated gzip (the compressed stream does not end).") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise SesExportRecordsError(f"The export file is not valid gzip: {exc}.") from None


class RecordCounter:
    """
    Counts the records of an export file fed chunk by chunk, with :func:`count_records`, in a thread of its own.

    :meth:`update` hands the chunk itself (no copy) to the counting thread, waiting only when
    ``max_pending`` chunks are queued already; :attr:`records` waits for the count. So a copy feeding it pays
    for the parsing only where it has no idle core to run on. Call :meth:`close` when giving up early.

    :param source_type: the job's ``ExportSourceType``, or ``None`` to tell it from the content.
    :param data_format: the job's ``DataFormat``, or ``None`` to tell it from the content.
    :param max_pending: chunks queued for counting at most (bounds memory).
    """

    def __init__(self, source_type: str | None = None, data_format: str | None = None, max_pending: int = 8) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max(1, max_pending))
        self._count = 0
        self._error: Exception | None = None
        self._started = self._ended = self._fed_all = False
        self._thread = threading.Thread(
            target=self._run, args=(source_type, data_format), name="ses-export-record-count", daemon=True
        )

    def update(self, chunk: bytes) -> None:
        """
        Feed the next chunk of the file.

        :param chunk: raw bytes, as stored (compressed or not).
        """
        if self._ended:
            raise ValueError("RecordCounter: the count has ended; no more chunks can be fed.")
        if not self._started:
            self._started = True
            self._thread.start()
        if chunk:
            self._queue.put(chunk)

    @property
    def records(self) -> int:
        """
        The number of records in the file: ends the count (no more :meth:`update`) and waits for it.

        :raises SesExportRecordsError: the file is not one of the layouts.
        """
        self.close()
        if self._error is not None:
            raise self._error
        return self._count

    def close(self) -> None:
        """End the count (after the last chunk, or to give up) and wait for the thread."""
        if not self._ended:
            self._ended = True
            if self._started:
                self._queue.put(None)
                self._thread.join()

    def _chunks(self) -> Iterator[bytes]:
        while (chunk := self._queue.get()) is not None:
            yield chunk
        self._fed_all = True

    def _run(self, source_type: str | None, data_format: str | None) -> None:
        try:
            self._count = count_records(self._chunks(), source_type=source_type, data_format=data_format)
        except Exception as exc:  # raised to whoever asks for the count
            self._error = exc
        while not self._fed_all:  # take what is still fed, so that update() never waits forever
            self._fed_all = self._queue.get() is None


def export_content(source: Source) -> Iterator[bytes]:
    """
    The content bytes of an export file: gzip decompressed, a byte order mark and leading whitespace dropped.

    :param source: a binary file object, an iterable of byte chunks, or bytes.
    """
    content = cast(io.BufferedIOBase, _content(source))
    first, started = True, False
    while chunk := content.read1(_READ_SIZE):  # as the chunks come: a consumer (COPY) streams them on
        if first:
            chunk, first = chunk.removeprefix(codecs.BOM_UTF8), False
        if not started:
            chunk = chunk.lstrip(_WHITESPACE)
            if not chunk:
                continue
            started = True
        yield chunk


# -- checking that a download is an export -----------------------------------------------------------------
#: Content bytes :class:`ExportCheck` may read before it must have seen a CSV header line or a first JSON object.
CHECK_HEAD_BYTES = 64 * 1024
#: Content types no export is served with: a web page, an XML document (a proxy's or a portal's answer). Other
#: types are left to the first bytes: how S3 labels an export's object is up to whoever wrote it.
_PAGE_TYPE = r"text/html|application/xhtml\+xml|(?:text|application)/xml|\S+/\S+\+xml"


#: The most of a server's ``Content-Type`` an error quotes.
MAX_CONTENT_TYPE_CHARS = 100


class Download(Protocol):
    """What :class:`ExportCheck` reads of a download (an ``ExportStream``)."""

    job_id: str
    job: dict[str, Any]
    content_type: str | None
    size: int | None


class ExportCheck:
    """
    Checks that a file being downloaded is an SES export of its job's ``DataFormat``, before anything is stored.

    The rule: the response's content type, when there is one, is not a web page's or an XML document's; the content
    (after gzip, a byte order mark and leading whitespace) starts as the format's layouts do: for CSV, a Message
    Insights or metrics header line; for JSON, an array whose first element is ``]`` or a Message Insights or metrics
    object (or such an object first in a file of one object per line). Markup (``<``) is never an export. An empty
    file passes: an export with no records. Whether the layout is the job's ``ExportSourceType`` is left to the reader
    (:func:`iter_records`). Only the first :data:`CHECK_HEAD_BYTES` of content are held.

    Feed it every chunk before passing the chunk on (:meth:`update`, or :meth:`checked`), then call :meth:`finish`.

    :param download: the download; its ``job_id``, ``job`` (GetExportJob's response, for ``DataFormat``),
        ``content_type`` and ``size`` are read when needed, so they may be filled in as the download starts.
    :raises SesExportContentError: naming the job and what it got (content type, size, what the content starts
        as; never the content itself).
    """

    def __init__(self, download: Download) -> None:
        self._download = download
        self._gzip: bool | None = None  # not known before two bytes have come
        self._inflate = zlib.decompressobj(wbits=31)
        self._raw = b""  # the stored bytes until gzip or not is known
        self._head = b""  # the content (decompressed) so far, at most CHECK_HEAD_BYTES
        self._received = 0
        #: Whether the file has been found to be an export (no more checking to do).
        self.passed: bool = False

    @property
    def _data_format(self) -> str | None:
        data_format = (self._download.job.get("ExportDestination") or {}).get("DataFormat")
        return data_format.upper() if isinstance(data_format, str) and data_format.upper() in DATA_FORMATS else None

    def update(self, chunk: bytes) -> None:
        """
        Check the next chunk of the file as received.

        :param chunk: raw bytes, as stored (compressed or not).
        """
        first = self._received == 0
        self._received += len(chunk)
        if self.passed:
            return
        if first:
            self._check_content_type()
        self._add(chunk)
        if self._head:
            self._decide(final=False)

    def finish(self) -> None:
        """Check at the end of the file (a file shorter than a header line, an empty file)."""
        if self.passed:
            return
        self._check_content_type()
        if self._gzip is None:
            self._head, self._raw = self._raw, b""  # a file of one byte
        elif self._gzip and not self._inflate.eof and len(self._head) < CHECK_HEAD_BYTES:
            raise self._error("truncated gzip data")
        if not self._content():
            self.passed = True  # empty (or whitespace only): an export with no records
            return
        self._decide(final=True)

    def checked(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """
        ``chunks``, each passed on once checked, then :meth:`finish`.

        :param chunks: the file's chunks.
        """
        for chunk in chunks:
            self.update(chunk)
            yield chunk
        self.finish()

    def _content(self) -> bytes:
        """The head without a byte order mark and leading whitespace."""
        return self._head.removeprefix(codecs.BOM_UTF8).lstrip(_WHITESPACE)

    def _add(self, chunk: bytes) -> None:
        """Add the content of ``chunk`` to the head (decompressed when the file is gzip), up to CHECK_HEAD_BYTES."""
        if self._gzip is None:
            self._raw += chunk
            if len(self._raw) < len(GZIP_MAGIC):
                return
            self._gzip, chunk, self._raw = self._raw.startswith(GZIP_MAGIC), self._raw, b""
        room = CHECK_HEAD_BYTES - len(self._head)
        if not self._gzip:
            self._head += chunk[:room]
            return
        data = self._inflate.unconsumed_tail + chunk
        try:
            while room > 0 and data:
                out = self._inflate.decompress(data, room)
                self._head, room = self._head + out, room - len(out)
                data = self._inflate.unconsumed_tail
                if self._inflate.eof and self._inflate.unused_data:  # the next member (concatenated gzip)
                    data, self._inflate = self._inflate.unused_data, zlib.decompressobj(wbits=31)
                elif self._inflate.eof or not out:
                    break
        except zlib.error:
            raise self._error("gzip data that does not decompress") from None

    def _check_content_type(self) -> None:
        media_type = (self._download.content_type or "").split(";", 1)[0].strip().lower()
        if re.fullmatch(_PAGE_TYPE, media_type):
            raise self._error("not a content type an export is served with")

    def _decide(self, final: bool) -> bool:
        """Whether the head shows an export (True), not yet known (False); raises when it shows something else."""
        head, data_format = self._content(), self._data_format
        if not head and len(self._head) < CHECK_HEAD_BYTES:
            return False
        kind = "JSON" if head[:1] in (b"[", b"{") else "CSV"
        if (data_format is not None and kind != data_format) or head[:1] == b"<":
            raise self._error(_looks_like(head))
        decided = self._csv_header(final) if kind == "CSV" else self._json_start(final)
        if not decided and len(self._head) >= CHECK_HEAD_BYTES:
            what = "a header line" if kind == "CSV" else "a complete first object"
            raise self._error(f"{_looks_like(head)}, without {what} in its first {CHECK_HEAD_BYTES} bytes")
        self.passed = decided
        return decided

    def _csv_header(self, final: bool) -> bool:
        head = self._content()
        end = head.find(b"\n")
        if end < 0 and not final:
            return False
        try:
            line = head[: end if end >= 0 else None].decode("utf-8")
            _csv_layout(next(csv.reader([line.rstrip("\r")]), []), None, _timestamp)
        except (UnicodeDecodeError, csv.Error, SesExportRecordsError):
            raise self._error(f"{_looks_like(head)}, not a Message Insights or metrics CSV header") from None
        return True

    def _json_start(self, final: bool) -> bool:
        text = self._content().decode("utf-8", "replace")
        pos = 0
        if text.startswith("["):
            pos = len(text) - len(text[1:].lstrip(" \t\r\n"))
            if pos == len(text):
                if final:
                    raise self._error("a JSON array that is not closed")
                return False
            if text[pos] == "]":
                return True  # an empty array: no records
        if text[pos] != "{":
            raise self._error("JSON whose first element is not an object")
        try:
            first, _ = json.JSONDecoder().raw_decode(text, pos)
            _json_layout(first, None, _timestamp)
        except json.JSONDecodeError:
            if not final:
                return False
            raise self._error("JSON whose first object is not complete") from None
        except SesExportRecordsError:
            raise self._error("JSON whose first object is neither a Message Insights nor a metrics record") from None
        return True

    def _error(self, found: str) -> SesExportContentError:
        download = self._download
        size = download.size if download.size is not None else self._received
        # the server's header: anything may be in it (a signed URL echoed by a proxy), at any length
        content_type = redact_text(download.content_type or "no content type")
        if len(content_type) > MAX_CONTENT_TYPE_CHARS:
            content_type = content_type[:MAX_CONTENT_TYPE_CHARS] + "..."
        return SesExportContentError(
            f"SES export job {download.job_id!r}: the download is not a {self._data_format or 'CSV or JSON'} export "
            f"file: got {content_type}, {size} bytes, {found} (a proxy's or captive portal's answer in S3's place?)."
        )


def check_record_count(
    job_id: str, job: dict[str, Any], records: int | None, outcome: str, *, uncounted: str = ""
) -> None:
    """
    The one rule for a file's record count: when GetExportJob gives ``Statistics.ExportedRecordsCount``, the file
    must have that many records (real SES gives only ``ProcessedRecordsCount``: nothing to compare then).

    :param job_id: the export job's id.
    :param job: its GetExportJob response (``Statistics``).
    :param records: the records read from the file, or None when they could not be counted.
    :param outcome: what the caller does not do because of a mismatch, for the error (e.g. "not writing s3://b/k").
    :param uncounted: why the records could not be counted (when ``records`` is None), for the error.
    :raises SesExportTransferError: the counts differ, or the records could not be counted though SES gave a count.
    """
    expected = statistics_of(job)["ExportedRecordsCount"]
    if expected is None:
        return
    if records is None:
        raise SesExportTransferError(
            f"SES export job {job_id!r}: its records cannot be counted ({uncounted or 'unknown layout'}); {outcome}."
        )
    if records != expected:
        raise SesExportTransferError(
            f"SES export job {job_id!r}: the file has {records} records but "
            f"Statistics.ExportedRecordsCount is {expected}; {outcome}. "
            "The export is inconsistent: create a new export job."
        )


def _looks_like(head: bytes) -> str:
    """What content starting with ``head`` looks like, without quoting it (it may hold anything)."""
    start = head.lstrip(_WHITESPACE)[:1]
    if not start:
        return "no content"
    if start == b"<":
        return "HTML or XML markup"
    if start in (b"[", b"{"):
        return "JSON"
    return "text"


def split_metric_column(name: str) -> tuple[str, str] | None:
    """
    ``("DELIVERY_OPEN", "RATE")`` for a metrics column (or JSON ``metrics`` key) ``DELIVERY_OPEN_RATE``.

    :param name: the column name.
    :return: ``(metric, aggregation)``, or None when ``name`` is not ``<METRIC>_<AGGREGATION>``.
    """
    if re.fullmatch(_METRIC_COLUMN, name) is None:
        return None
    metric, aggregation = name.rsplit("_", 1)
    return metric, aggregation


# -- values ------------------------------------------------------------------------------------------
_Converter = Callable[[str], Any]


def _text(value: str) -> str | None:
    return value or None


def _timestamp(value: str) -> dt.datetime | None:
    """``2026-09-23 14:05:07.123 UTC`` (or ISO 8601) as a timezone-aware UTC datetime."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"  # parsed with the offset: much faster than replace(tzinfo=...)
    elif text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.timezone.utc)
    return parsed if parsed.tzinfo is dt.timezone.utc else parsed.astimezone(dt.timezone.utc)


def _metric(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a number: {type(value).__name__}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"not a number: {str(value)[:40]!r}") from None


# -- CSV: Message Insights and metrics -----------------------------------------------------------------
def _csv_records(
    lines: Iterable[str], before: int, source_type: str | None, timestamp: _Converter | None
) -> Iterator[Any]:
    """
    The records of a CSV export (``timestamp`` None: their number).

    :param lines: the file's lines from the header on.
    :param before: blank lines before the header (for the line numbers in errors).
    """
    rows = csv.reader(lines)
    try:
        header = next(rows)
        keys, converters, trailing = _csv_layout(header, source_type, timestamp or _text)
        missing = _missing_columns(keys) if any(key.lower() == "messageid" for key in keys) else {}
        width = len(header)
        if timestamp is None:  # counting: rows by their number of fields, in C (a blank line has none)
            widths = Counter(map(len, rows))
            odd = next((n for n in widths if n not in (0, width)), None)
            if odd is not None:
                raise SesExportRecordsError(f"A line of the export file has {odd} fields, the header has {width}.")
            yield widths[width]
            return
        line = rows.line_num + 1  # where the next record starts (a quoted field may span lines)
        for row in rows:
            start, line = line, rows.line_num + 1
            if len(row) != width:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                raise SesExportRecordsError(
                    f"Line {before + start} of the export file has {len(row)} fields, the header has {width}."
                )
            if trailing and row[-1]:
                raise SesExportRecordsError(
                    f"Line {before + start} of the export file has a value in the unnamed last column."
                )
            try:
                # Not strict: with a trailing unnamed column, the row's last (empty) value is left out.
                record = {key: convert(value) for key, convert, value in zip(keys, converters, row, strict=False)}
            except ValueError as exc:
                raise SesExportRecordsError(f"Line {before + start} of the export file: {exc}.") from None
            if missing:
                record.update(missing)
            yield record
    except csv.Error as exc:
        raise SesExportRecordsError(
            f"The export file is not valid CSV (line {before + rows.line_num}): {exc}."
        ) from None


def _csv_layout(
    header: list[str], source_type: str | None, timestamp: _Converter
) -> tuple[list[str], list[_Converter], bool]:
    """``(keys, converters, trailing unnamed column)`` for a CSV header, or a typed error."""
    names = [name.strip() for name in header]
    trailing = len(names) > 1 and names[-1] == ""
    if trailing:
        names.pop()
    shown = ", ".join(names)[:300]
    if "" in names:
        raise SesExportRecordsError(f"The export file's CSV header has an unnamed column ({shown}).")
    insights = "messageid" in (name.lower() for name in names)
    metrics = [re.fullmatch(_METRIC_COLUMN, name) is not None for name in names]
    if source_type is None:
        source_type = MESSAGE_INSIGHTS if insights else METRICS_DATA if any(metrics) else None
        if source_type is None:
            raise SesExportRecordsError(
                "The export file's CSV header is neither Message Insights (no messageid column) nor metrics "
                f"(no <METRIC>_<AGGREGATION> column): {shown}."
            )
    converters: list[Callable[[str], Any]]
    if source_type == MESSAGE_INSIGHTS:
        if not insights:
            raise SesExportRecordsError(
                f"The export job is MESSAGE_INSIGHTS, but the file's CSV header has no messageid column: {shown}."
            )
        keys = names
        converters = [timestamp if name.lower().endswith("timestamp") else _text for name in names]
    else:
        if not any(metrics):
            raise SesExportRecordsError(
                "The export job is METRICS_DATA, but the file's CSV header has no <METRIC>_<AGGREGATION> "
                f"column: {shown}."
            )
        keys = [_IDENTITY_ALIASES.get(name.upper(), name) for name in names]
        converters = [_metric if is_metric else _text for is_metric in metrics]
    if len(set(keys)) != len(keys):
        raise SesExportRecordsError(f"The export file's CSV header names a column twice: {shown}.")
    return keys, converters, trailing


# -- JSON: an array on one line (metrics), or one object per line (Message Insights) --------------------
def _json_error(message: str) -> SesExportRecordsError:
    return SesExportRecordsError(f"The export file is not a JSON array of objects: {message}.")


def _check_length(line: bytes, number: int) -> None:
    """A typed error for a line cut at :data:`MAX_JSON_LINE_BYTES` + 1 bytes by ``readline``."""
    if len(line) > MAX_JSON_LINE_BYTES:
        raise _json_error(f"line {number} is longer than {MAX_JSON_LINE_BYTES} bytes")


_JSON_DECODER = json.JSONDecoder()


def _json_loads(line: bytes, number: int) -> Any:
    """One line's JSON value, or a typed error naming the line (never quoting it)."""
    try:
        # SES writes UTF-8: decoded here (a byte order mark dropped, as json.loads does), not by json.loads, which
        # first guesses among UTF-8, -16 and -32 per call. The line is stripped already, so raw_decode needs no
        # whitespace skipping before the value, and anything after it is extra data
        text = line.decode("utf-8-sig")
        value, end = _JSON_DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        raise _json_error(f"line {number} is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if end != len(text):
        rest = text[end:]
        extra = end + len(rest) - len(rest.lstrip(" \t\r\n")) + 1  # where json.loads puts it
        raise _json_error(f"line {number} is not valid JSON (Extra data at column {extra})")
    return value


def _json_objects(first: bytes, number: int, content: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of each element, told by the first line: ``[`` alone, a whole array, or an object."""
    _check_length(first, number)
    opening = first.strip()
    if opening.startswith(b"[") and opening != b"[":  # the whole array on its first line (metrics)
        array = _json_loads(opening, number)
        if not isinstance(array, list):
            raise _json_error(f"line {number} holds more than the array")
        yield from ((number, element) for element in array)
        closed = True
    else:  # one object per line (Message Insights), in an array with leading commas or not
        in_array, closed = opening == b"[", opening != b"["
        expect_comma = False
        lines = chain([] if in_array else [first], iter(lambda: content.readline(MAX_JSON_LINE_BYTES + 1), b""))
        for number, line in enumerate(lines, start=number + in_array):  # noqa: B020  (the last number is used after)
            _check_length(line, number)
            value = line.strip()
            if not value:
                continue
            if closed and in_array:
                raise _json_error(f"data after the closing ']' on line {number}")
            if in_array and value == b"]":
                closed = True
                continue
            if expect_comma:
                if not value.startswith(b","):
                    raise _json_error(f"expected ',' or ']' at the start of line {number}")
                value = value[1:].lstrip(_WHITESPACE)  # JSON whitespace only
            expect_comma = in_array
            yield number, _json_loads(value, number)
    if not closed:
        raise _json_error("the array is not closed (truncated file)")
    for line in iter(lambda: content.readline(MAX_JSON_LINE_BYTES + 1), b""):
        number += 1
        if line.strip():
            raise _json_error(f"data after the closing ']' on line {number}")


def _json_records(
    first: bytes, number: int, content: IO[bytes], source_type: str | None, timestamp: _Converter | None
) -> Iterator[Any]:
    """The records of a JSON export (``timestamp`` None: a 1 for each)."""
    normalise: Callable[[dict[str, Any]], Record] | None = None
    for line, obj in _json_objects(first, number, content):
        if not isinstance(obj, dict):
            raise _json_error(f"an element on line {line} is not an object (it is {type(obj).__name__})")
        if normalise is None:
            normalise = _json_layout(obj, source_type, timestamp or _text)
        if timestamp is None:
            yield 1
            continue
        try:
            record = normalise(obj)
        except ValueError as exc:
            raise SesExportRecordsError(f"The object on line {line} of the export file: {exc}.") from None
        yield record


def _json_layout(
    first: dict[str, Any], source_type: str | None, timestamp: _Converter
) -> Callable[[dict[str, Any]], Record]:
    """The normaliser for JSON records like ``first``, or a typed error."""
    insights = any(key.lower() == "messageid" for key in first)
    metrics = isinstance(first.get("metrics"), dict)
    keys = ", ".join(first)[:300]
    if source_type is None:
        source_type = MESSAGE_INSIGHTS if insights else METRICS_DATA if metrics else None
        if source_type is None:
            raise SesExportRecordsError(
                "The export file's JSON records are neither Message Insights (no messageid key) nor metrics "
                f"(no metrics object): keys {keys}."
            )
    if source_type == MESSAGE_INSIGHTS:
        if not insights:
            raise SesExportRecordsError(
                f"The export job is MESSAGE_INSIGHTS, but the file's first JSON record has no messageid: keys {keys}."
            )
        return lambda obj: _insights_record(obj, timestamp)
    if not metrics:
        raise SesExportRecordsError(
            f"The export job is METRICS_DATA, but the file's first JSON record has no metrics object: keys {keys}."
        )
    return _metrics_record


def _missing_columns(keys: Iterable[str]) -> dict[str, None]:
    """The Message Insights columns not among ``keys`` (in any case), each with the value None."""
    present = {key.lower() for key in keys}
    return dict.fromkeys(column for column in MESSAGE_INSIGHTS_COLUMNS if column not in present)


_TEXT, _TIMESTAMP, _MISSING = range(3)


@functools.lru_cache(maxsize=64)
def _insights_plan(keys: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """
    How to build a record from a Message Insights object with ``keys``: ``(key, kind)`` in the record's order.

    Every column the object lacks (in any case) is added as None, in the columns' order, before the keys the table
    does not know; an object with every column keeps its own order. Worked out once per layout of keys (a JSON
    export has a handful), not per object.
    """
    kinds = {key: _TIMESTAMP if key.lower().endswith("timestamp") else _TEXT for key in keys}
    missing = _missing_columns(keys)
    if not missing:
        return tuple(kinds.items())
    ordered = [(c, kinds.get(c, _MISSING)) for c in MESSAGE_INSIGHTS_COLUMNS if c in kinds or c in missing]
    known = set(MESSAGE_INSIGHTS_COLUMNS)
    return (*ordered, *((key, kind) for key, kind in kinds.items() if key not in known))


def _insights_record(obj: dict[str, Any], timestamp: _Converter) -> Record:
    """A Message Insights object as a record with every column (None where the file omits it), as from CSV."""
    record: Record = {}
    for key, kind in _insights_plan(tuple(obj)):
        if kind == _MISSING:
            record[key] = None
            continue
        value = obj[key]
        if isinstance(value, str):
            value = timestamp(value) if kind == _TIMESTAMP else value or None
        record[key] = value
    return record


def _metrics_record(obj: dict[str, Any]) -> Record:
    record: Record = {}
    for key, value in obj.items():
        if key == "metrics":
            if not isinstance(value, dict):
                raise ValueError("metrics is not an object")
            value = {name: _metric(number) for name, number in value.items()}
        elif value == "":
            value = None
        record[key] = value
    return record
