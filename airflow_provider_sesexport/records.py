"""
Reading SES export files into records: the four layouts real SES writes, in constant memory.

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

Records are dicts with normalised values: ``""`` becomes ``None``; Message Insights timestamps
(columns whose name ends with ``timestamp``) become timezone-aware UTC datetimes; metric values
become floats. CSV keys are the header's names, except that a metrics column ``IDENTITY`` (the
spelling AWS's sample loader renames) is always given as ``EMAIL_IDENTITY``. JSON keys are kept as
in the file (a metrics record keeps its nested ``metrics`` object).

The layout comes from the export job when known (``ExportSourceType``, ``DataFormat``) and otherwise
from the content: gzip-compressed input is decompressed on the fly; a file whose first
non-whitespace byte is ``[`` or ``{`` is JSON (an array of objects, or one object per line), anything
else CSV; Message Insights is told from metrics by the ``messageid`` column or key, metrics by
``<METRIC>_<AGGREGATION>`` columns or the ``metrics`` object. Anything else raises
:class:`~airflow_provider_sesexport.exceptions.SesExportRecordsError` naming the cause.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import chain
from typing import IO, Any, Protocol

from airflow_provider_sesexport.exceptions import SesExportContentError, SesExportRecordsError, SesExportTransferError
from airflow_provider_sesexport.utils.job_summary import statistics_of
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
#: Decompressed bytes produced per step, whatever the compression ratio (bounds memory on a gzip bomb).
_INFLATE_STEP = 1024 * 1024
#: A JSON record (one array element) may not be longer than this many characters.
MAX_JSON_RECORD_CHARS = 16 * 1024 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = codecs.BOM_UTF8
_WHITESPACE = b" \t\r\n"
_METRIC_COLUMN = re.compile(r"[A-Z][A-Z0-9_]*_(?:VOLUME|RATE)")
_JSON_SPACE = re.compile(r"[ \t\r\n]*")

# Record counting works on bytes reduced to the few that matter (C-speed translate and regexes):
# CSV keeps quotes and newlines, everything else visible becomes "x"; JSON keeps quotes and brackets.
_CSV_TABLE = bytes(b if b in b'"\n' else ord("x") for b in range(256))
_QUOTED = re.compile(rb'"[^"]*"')  # a CSV quoted field, or a JSON string once escapes are gone
_JSON_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_JSON_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"{}[]')


def _replace_quoted(data: bytes, inside: bool, replacement: bytes) -> tuple[bytes, bool]:
    """
    ``data`` with each quoted run replaced by ``replacement``, and whether it ends inside an unfinished run.

    :param data: the next chunk, after the earlier chunks.
    :param inside: whether the earlier chunks ended inside a quoted run (then ``data`` starts in it).
    :param replacement: what stands for a quoted run (an unfinished one too).
    """
    if inside:
        data = b'"' + data
    data = _QUOTED.sub(replacement, data)
    open_at = data.find(b'"')
    if open_at < 0:
        return data, False
    return data[:open_at] + replacement, True


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


class _Inflater:
    """Decompresses gzip data fed in pieces (several concatenated members allowed), in bounded steps."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(wbits=31)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while True:
                out = self._zlib.decompress(data, _INFLATE_STEP)
                if out:
                    yield out
                if self._zlib.eof:
                    data = self._zlib.unused_data
                    if not data:
                        return
                    self._zlib = zlib.decompressobj(wbits=31)
                else:
                    data = self._zlib.unconsumed_tail
                    # A full step may leave output inside zlib even with no input left: drain it.
                    if not data and len(out) < _INFLATE_STEP:
                        return
        except zlib.error as exc:
            raise SesExportRecordsError(f"The export file is not valid gzip: {exc}.") from None

    def finish(self) -> None:
        if not self._zlib.eof:
            raise SesExportRecordsError("The export file is truncated gzip (the compressed stream does not end).")


class _Front:
    """
    The first stage of reading: bytes as stored in, content bytes out.

    Decompresses gzip (told by its magic), drops a UTF-8 byte order mark and leading whitespace, and
    tells the format from the first byte of content: ``kind`` is ``"json"`` or ``"csv"`` once a
    content byte has been seen, ``None`` before.
    """

    def __init__(self) -> None:
        self.kind: str | None = None
        self._raw_head: bytes | None = b""  # until gzip or not is decided
        self._inflater: _Inflater | None = None
        self._head: bytes | None = b""  # until the first content byte

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        if self._raw_head is not None:
            chunk = self._raw_head + chunk
            if len(chunk) < len(_GZIP_MAGIC):
                self._raw_head = chunk
                return
            self._raw_head = None
            if chunk.startswith(_GZIP_MAGIC):
                self._inflater = _Inflater()
        if self._inflater is None:
            yield from self._content(chunk)
        else:
            for data in self._inflater.feed(chunk):
                yield from self._content(data)

    def finish(self) -> Iterator[bytes]:
        if self._raw_head:
            head, self._raw_head = self._raw_head, None
            yield from self._content(head)
        if self._inflater is not None:
            self._inflater.finish()

    def _content(self, data: bytes) -> Iterator[bytes]:
        if self._head is not None:
            data = self._head + data
            if _BOM.startswith(data[: len(_BOM)]) and len(data) < len(_BOM):
                self._head = data  # perhaps the start of a byte order mark
                return
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
            data = data.lstrip(_WHITESPACE)
            if not data:
                self._head = b""
                return
            self._head = None
            self.kind = "json" if data[:1] in (b"[", b"{") else "csv"
        if data:
            yield data

    def content(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """All content bytes of ``chunks`` (pulls them)."""
        for chunk in chunks:
            yield from self.feed(chunk)
        yield from self.finish()


class RecordCounter:
    """
    Counts the records of an export file fed chunk by chunk, in any of the four layouts, gzip or not.

    It does not parse values (so it is fast enough to run beside a copy) and it does not check the
    layout; :func:`iter_records` does. CSV: non-blank lines outside quoted fields, minus the header.
    JSON: the objects of the top-level array (or the top-level objects of a file of one object per line).
    """

    def __init__(self) -> None:
        self._front = _Front()
        # CSV state
        self._lines = 0
        self._line_open = False
        self._in_quote = False
        # JSON state
        self._objects = 0
        self._depth = 0
        self._record_depth: int | None = None
        self._in_string = False
        self._escape = False

    def update(self, chunk: bytes) -> None:
        """
        Feed the next chunk of the file.

        :param chunk: raw bytes, as stored (compressed or not).
        """
        for data in self._front.feed(chunk):
            if self._front.kind == "json":
                self._count_json(data)
            else:
                self._count_csv(data)

    @property
    def records(self) -> int:
        """Records seen so far (with a final CSV line that has no newline yet counted)."""
        if self._front.kind == "json":
            return self._objects
        lines = self._lines + (1 if self._line_open else 0)
        return max(0, lines - 1)

    def _count_csv(self, data: bytes) -> None:
        reduced = data.translate(_CSV_TABLE, b" \t\r")
        # A quoted field is content; "" inside one reads as two adjacent fields, same parity.
        reduced, self._in_quote = _replace_quoted(reduced, self._in_quote, b"x")
        if self._line_open:
            reduced = b"x" + reduced
        # Only "x" and newlines are left: a line with content ends "x\n".
        self._lines += reduced.count(b"x\n")
        if reduced:
            self._line_open = reduced.endswith(b"x")

    def _count_json(self, data: bytes) -> None:
        if self._escape:
            data = b"\\" + data
        data = _JSON_ESCAPE.sub(b"", data)
        self._escape = data.endswith(b"\\")
        reduced = data.translate(None, _JSON_NOT_STRUCTURE)
        reduced, self._in_string = _replace_quoted(reduced, self._in_string, b"")
        depth, record_depth, objects = self._depth, self._record_depth, self._objects
        for byte in reduced:
            if byte in b"[{":
                if record_depth is None:
                    record_depth = 1 if byte == ord("[") else 0
                if byte == ord("{") and depth == record_depth:
                    objects += 1
                depth += 1
            else:
                depth -= 1
        self._depth, self._record_depth, self._objects = depth, record_depth, objects


def export_content(source: Source) -> Iterator[bytes]:
    """
    The content bytes of an export file: gzip decompressed, a byte order mark and leading whitespace dropped.

    :param source: a binary file object, an iterable of byte chunks, or bytes.
    """
    return _Front().content(_chunks(source))


def count_records(source: Source) -> int:
    """
    Count the records of an export file (any of the four layouts, gzip-compressed or not).

    :param source: a binary file object, an iterable of byte chunks, or bytes.
    :return: the number of records (CSV lines after the header, JSON array elements).
    """
    counter = RecordCounter()
    for chunk in _chunks(source):
        counter.update(chunk)
    return counter.records


# -- checking that a download is an export -----------------------------------------------------------------
#: Content bytes :class:`ExportCheck` may read before it must have seen a CSV header line or a first JSON object.
CHECK_HEAD_BYTES = 64 * 1024
#: Content types no export is served with: a web page, an XML document (a proxy's or a portal's answer). Other
#: types are left to the first bytes: how S3 labels an export's object is up to whoever wrote it.
_PAGE_TYPE = re.compile(r"text/html|application/xhtml\+xml|(?:text|application)/xml|\S+/\S+\+xml")


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
        self._front = _Front()
        self._head = b""
        self._received = 0
        #: Whether the file has been found to be an export (no more checking to do).
        self.passed = False

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
        try:
            for data in self._front.feed(chunk):
                self._head += data
                if self._decide(final=False):
                    return
        except SesExportRecordsError:
            raise self._error("gzip data that does not decompress") from None

    def finish(self) -> None:
        """Check at the end of the file (a file shorter than a header line, an empty file)."""
        if self.passed:
            return
        self._check_content_type()
        try:
            for data in self._front.finish():
                self._head += data
        except SesExportRecordsError:
            raise self._error("truncated gzip data") from None
        if not self._head:
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

    def _check_content_type(self) -> None:
        media_type = (self._download.content_type or "").split(";", 1)[0].strip().lower()
        if _PAGE_TYPE.fullmatch(media_type):
            raise self._error("not a content type an export is served with")

    def _decide(self, final: bool) -> bool:
        """Whether the head shows an export (True), not yet known (False); raises when it shows something else."""
        head, data_format = self._head, self._data_format
        kind = "JSON" if head[:1] in (b"[", b"{") else "CSV"
        if (data_format is not None and kind != data_format) or head[:1] == b"<":
            raise self._error(_looks_like(head))
        decided = self._csv_header(final) if kind == "CSV" else self._json_start(final)
        if not decided and len(head) >= CHECK_HEAD_BYTES:
            what = "a header line" if kind == "CSV" else "a complete first object"
            raise self._error(f"{_looks_like(head)}, without {what} in its first {CHECK_HEAD_BYTES} bytes")
        self.passed = decided
        return decided

    def _csv_header(self, final: bool) -> bool:
        end = self._head.find(b"\n")
        if end < 0 and not final:
            return False
        try:
            line = self._head[: end if end >= 0 else None].decode("utf-8")
            _csv_layout(next(csv.reader([line.rstrip("\r")]), []), None, _timestamp)
        except (UnicodeDecodeError, csv.Error, SesExportRecordsError):
            raise self._error(f"{_looks_like(self._head)}, not a Message Insights or metrics CSV header") from None
        return True

    def _json_start(self, final: bool) -> bool:
        text = self._head.decode("utf-8", "replace")
        pos = 0
        if text.startswith("["):
            pos = _JSON_SPACE.match(text, 1).end()  # type: ignore[union-attr]
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


def check_record_count(job_id: str, job: dict[str, Any], records: int, outcome: str) -> None:
    """
    The one rule for a file's record count: when GetExportJob gives ``Statistics.ExportedRecordsCount``, the file
    must have that many records (real SES gives only ``ProcessedRecordsCount``: nothing to compare then).

    :param job_id: the export job's id.
    :param job: its GetExportJob response (``Statistics``).
    :param records: the records read from the file.
    :param outcome: what the caller does not do because of a mismatch, for the error (e.g. "not writing s3://b/k").
    :raises SesExportTransferError: the counts differ.
    """
    expected = statistics_of(job)["ExportedRecordsCount"]
    if expected is not None and records != expected:
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
    if _METRIC_COLUMN.fullmatch(name) is None:
        return None
    metric, aggregation = name.rsplit("_", 1)
    return metric, aggregation


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
    source_type = _check_choice("source_type", source_type, SOURCE_TYPES)
    data_format = _check_choice("data_format", data_format, DATA_FORMATS)
    front = _Front()
    content = front.content(_chunks(source))
    first = next(content, None)
    if first is None:
        return  # empty (or whitespace only): no records
    kind = "JSON" if front.kind == "json" else "CSV"
    if data_format is not None and kind != data_format:
        found = "starts with " + repr(first[:1].decode("latin-1")) if kind == "JSON" else "does not start with [ or {"
        raise SesExportRecordsError(f"The export job says DataFormat {data_format}, but the file {found}.")
    read = _json_records if kind == "JSON" else _csv_records
    yield from read(chain([first], content), source_type, _timestamp if parse_timestamps else _text)


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


# -- CSV -----------------------------------------------------------------------------------------------
class _ChunkReader(io.RawIOBase):
    """A read-only raw file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._chunk = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._offset >= len(self._chunk):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk, self._offset = chunk, 0
        size = min(len(buffer), len(self._chunk) - self._offset)
        buffer[:size] = self._chunk[self._offset : self._offset + size]
        self._offset += size
        return size


def _csv_records(content: Iterator[bytes], source_type: str | None, timestamp: _Converter) -> Iterator[Record]:
    text = io.TextIOWrapper(io.BufferedReader(_ChunkReader(content), _READ_SIZE), encoding="utf-8", newline="")
    rows = csv.reader(text)
    try:
        header = next(rows, None)
        if header is None:
            return
        keys, converters, trailing = _csv_layout(header, source_type, timestamp)
        width = len(header)
        line = rows.line_num + 1  # where the next record starts (a quoted field may span lines)
        for row in rows:
            start, line = line, rows.line_num + 1
            if len(row) != width:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                raise SesExportRecordsError(
                    f"Line {start} of the export file has {len(row)} fields, the header has {width}."
                )
            if trailing and row[-1]:
                raise SesExportRecordsError(f"Line {start} of the export file has a value in the unnamed last column.")
            try:
                # Not strict: with a trailing unnamed column, the row's last (empty) value is left out.
                record = {key: convert(value) for key, convert, value in zip(keys, converters, row, strict=False)}
            except ValueError as exc:
                raise SesExportRecordsError(f"Line {start} of the export file: {exc}.") from None
            yield record
    except csv.Error as exc:
        raise SesExportRecordsError(f"The export file is not valid CSV (line {rows.line_num}): {exc}.") from None
    except UnicodeDecodeError as exc:
        raise SesExportRecordsError(f"The export file is not UTF-8 text: {exc.reason}.") from None


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
    metrics = [_METRIC_COLUMN.fullmatch(name) is not None for name in names]
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


# -- JSON ----------------------------------------------------------------------------------------------
_START, _FIRST, _ELEMENT, _AFTER, _END, _LINES = range(6)


class _TextBuffer:
    """A sliding window of decoded text over content chunks: ``text[pos:]`` is what is left to read."""

    def __init__(self, content: Iterator[bytes]) -> None:
        self._content = content
        self._decode = codecs.getincrementaldecoder("utf-8")().decode
        self.text = ""
        self.pos = 0
        self.dropped = 0  # characters before ``text``
        self.eof = False

    def more(self) -> bool:
        """Append the next chunk (dropping what was read); ``False`` at the end of the file."""
        if self.eof:
            return False
        chunk = next(self._content, None)
        self.eof = chunk is None
        try:
            added = self._decode(b"" if chunk is None else chunk, final=self.eof)
        except UnicodeDecodeError as exc:
            raise SesExportRecordsError(f"The export file is not UTF-8 text: {exc.reason}.") from None
        self.dropped += self.pos
        self.text, self.pos = self.text[self.pos :] + added, 0
        return True


def _json_records(content: Iterator[bytes], source_type: str | None, timestamp: _Converter) -> Iterator[Record]:
    """
    The objects of a JSON array (or of a file of one object per line), decoded one at a time.

    ``raw_decode`` works on a sliding text buffer: an object cut by a chunk boundary fails to decode
    and is retried once the next chunk has arrived, so objects may be split at any byte and the
    memory used is a chunk plus one object, however long the file's lines.
    """
    raw_decode = json.JSONDecoder().raw_decode
    skip = _JSON_SPACE.match
    buf = _TextBuffer(content)
    state = _START
    normalise: Callable[[dict[str, Any]], Record] | None = None

    def error(message: str) -> SesExportRecordsError:
        return SesExportRecordsError(f"The export file is not a JSON array of objects: {message}.")

    while True:
        buf.pos = skip(buf.text, buf.pos).end()  # type: ignore[union-attr]
        if buf.pos >= len(buf.text):
            if buf.more():
                continue
            break
        char = buf.text[buf.pos]
        where = buf.dropped + buf.pos
        if state == _START:
            state = _FIRST if char == "[" else _LINES
            buf.pos += char == "["
        elif state == _AFTER:
            if char not in ",]":
                raise error(f"expected ',' or ']' at character {where}, found {char!r}")
            state = _ELEMENT if char == "," else _END
            buf.pos += 1
        elif state == _END:
            raise error(f"data after the closing ']' at character {where}")
        elif state == _FIRST and char == "]":
            state = _END
            buf.pos += 1
        elif char != "{":
            raise error(f"the element at character {where} is not an object (it starts with {char!r})")
        else:
            try:
                obj, end = raw_decode(buf.text, buf.pos)
            except json.JSONDecodeError as exc:
                if len(buf.text) - buf.pos <= MAX_JSON_RECORD_CHARS and buf.more():
                    continue  # perhaps cut by the chunk boundary: retry with the next chunk
                cause = "truncated" if buf.eof else f"longer than {MAX_JSON_RECORD_CHARS} characters or malformed"
                raise error(f"the object at character {where} is {cause}: {exc.msg}") from None
            if normalise is None:
                normalise = _json_layout(obj, source_type, timestamp)
            buf.pos = end
            if state != _LINES:
                state = _AFTER
            try:
                record = normalise(obj)
            except ValueError as exc:
                raise SesExportRecordsError(f"The object at character {where} of the export file: {exc}.") from None
            yield record
    if state in (_FIRST, _ELEMENT, _AFTER):
        raise error("the array is not closed (truncated file)")


def _json_layout(
    first: dict[str, Any], source_type: str | None, timestamp: _Converter
) -> Callable[[dict[str, Any]], Record]:
    """The normaliser for JSON records like ``first``, or a typed error."""
    insights = "messageid" in first
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
        return partial(_insights_record, timestamp=timestamp)
    if not metrics:
        raise SesExportRecordsError(
            f"The export job is METRICS_DATA, but the file's first JSON record has no metrics object: keys {keys}."
        )
    return _metrics_record


def _insights_record(obj: dict[str, Any], timestamp: _Converter) -> Record:
    record: Record = {}
    for key, value in obj.items():
        if isinstance(value, str):
            value = timestamp(value) if key.lower().endswith("timestamp") else value or None
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
