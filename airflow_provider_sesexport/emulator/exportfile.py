"""
Deterministic, fixed-width export files, generated on the fly.

Every data row of a file has the same length in bytes (``row_len``, newline included): each row is
right-padded with spaces before its ``\\n``. So the size of a file is ``len(header) + n_rows * row_len``
without generating it, and any byte range maps straight onto row indexes: a multi-GiB file is never
held in memory, only streamed in chunks.

Formats (``ExportDestination.DataFormat``):

* ``CSV``: one header line, then one line per row. Padding spaces follow the last column, which is
  always numeric (``row_number`` for Message Insights, ``value`` for VDM metrics) so ``int()`` /
  ``float()`` and CSV loaders that strip whitespace read it unchanged.
* ``JSON``: JSON Lines, no header: one JSON object per line, the padding spaces after the closing
  ``}`` (valid JSON whitespace).

Message Insights rows: ``message_id, send_timestamp, from_email_address, destination, subject, isp,
last_delivery_event, last_engagement_event, row_number``; ``MaxResults`` rows (default 1,000).

VDM metric rows: ``date, dimension_name, dimension_value, metric, aggregation, value``: one row per day
in ``[StartDate, EndDate]`` (UTC dates, both inclusive) x dimension value (every value of every key of
``Dimensions``; a value ``"*"`` expands to three generated values) x requested metric.

A ``row_multiplier`` repeats the base rows (with fresh ids and values) to make files of any size.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

_MASK = (1 << 64) - 1
DEFAULT_CHUNK_BYTES = 256 * 1024
DEFAULT_MESSAGE_INSIGHTS_ROWS = 1000
_TEMPLATE_PERIOD = 4096

_FROM = [b"news@example.com", b"alerts@example.com", b"billing@example.org", b"no-reply@example.net"]
_DEST = [b"alice@example.com", b"bob@example.org", b"carol@example.net", b"dave@example.com", b"erin@example.io"]
_SUBJECTS = [b"Your weekly digest", b"Invoice available", b"Welcome aboard", b"Password reset", b"Spring sale"]
_ISPS = [b"Gmail", b"Yahoo", b"Hotmail", b"AOL", b"iCloud", b"Comcast", b"Other"]
_DELIVERY = [b"DELIVERY", b"DELIVERY", b"DELIVERY", b"SEND", b"TRANSIENT_BOUNCE", b"PERMANENT_BOUNCE", b"COMPLAINT"]
_ENGAGEMENT = [b"", b"OPEN", b"CLICK", b""]
MESSAGE_INSIGHTS_COLUMNS = (
    "message_id",
    "send_timestamp",
    "from_email_address",
    "destination",
    "subject",
    "isp",
    "last_delivery_event",
    "last_engagement_event",
    "row_number",
)
METRICS_COLUMNS = ("date", "dimension_name", "dimension_value", "metric", "aggregation", "value")


def mix64(seed: int, i: int) -> int:
    """
    Deterministic 64-bit hash of ``(seed, i)`` (splitmix64 finaliser).

    :param seed: the seed.
    :param i: the index.
    """
    z = (seed * 0x9E3779B97F4A7C15 + i * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E5B) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _csv_field(value: bytes) -> bytes:
    """
    Quote a CSV field if it needs it, and escape ``%`` for use inside a ``bytes %`` template.

    :param value: the raw field.
    """
    text = value.decode("utf-8")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue().encode("utf-8").replace(b"%", b"%%")


def _json_str(value: bytes) -> bytes:
    """
    JSON-encode a string field (ASCII-only) and escape ``%`` for a ``bytes %`` template.

    :param value: the raw field.
    """
    return json.dumps(value.decode("utf-8")).encode("ascii").replace(b"%", b"%%")


class ExportFile:
    """
    A fixed-width export file described by row templates; nothing is materialised.

    Subclasses set ``header``, ``n_rows``, ``row_len`` and implement :meth:`render_row`.
    """

    header: bytes = b""
    n_rows: int = 0
    row_len: int = 1
    content_type: str = "application/octet-stream"

    @property
    def size(self) -> int:
        """Total size in bytes: header plus ``n_rows * row_len``."""
        return len(self.header) + self.n_rows * self.row_len

    def render_row(self, i: int) -> bytes:
        """
        Row ``i`` without padding or newline.

        :param i: the 0-based row index.
        """
        raise NotImplementedError

    def rows(self, start: int, stop: int) -> bytes:
        """
        Padded rows ``start`` (inclusive) to ``stop`` (exclusive), newline-terminated, concatenated.

        :param start: first row index.
        :param stop: one past the last row index.
        """
        width = self.row_len - 1
        render = self.render_row
        return b"".join([render(i).ljust(width) + b"\n" for i in range(start, stop)])

    def etag(self, identity: str) -> str:
        """
        A strong ETag for this file's content.

        :param identity: something that identifies the generator inputs (job id and seed).
        """
        digest = hashlib.md5(f"{identity}:{self.n_rows}:{self.row_len}".encode(), usedforsecurity=False)
        return f'"{digest.hexdigest()}"'

    def iter_range(
        self, first: int = 0, last: int | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> Iterator[bytes]:
        """
        Yield the bytes ``first..last`` (both inclusive, like an HTTP Range) in chunks.

        :param first: first byte offset.
        :param last: last byte offset (inclusive); default the end of the file.
        :param chunk_bytes: approximate chunk size.
        """
        size = self.size
        if last is None or last >= size:
            last = size - 1
        if first > last:
            return
        hlen = len(self.header)
        if first < hlen:
            yield self.header[first : min(last + 1, hlen)]
            first = hlen
            if first > last:
                return
        width = self.row_len
        row = (first - hlen) // width
        skip = (first - hlen) - row * width
        end_row = (last - hlen) // width  # inclusive
        keep_last = (last - hlen) - end_row * width + 1
        per_chunk = max(1, chunk_bytes // width)
        while row <= end_row:
            stop = min(end_row + 1, row + per_chunk)
            data = self.rows(row, stop)
            if stop == end_row + 1:
                data = data[: len(data) - width + keep_last]
            if skip:
                data = data[skip:]
                skip = 0
            yield data
            row = stop

    def read_all(self) -> bytes:
        """The whole file (for tests and small files only)."""
        return b"".join(self.iter_range())


class MessageInsightsFile(ExportFile):
    """
    Message Insights export rows.

    :param seed: the file's seed.
    :param data_source: the validated ``MessageInsightsDataSource`` (datetimes for dates).
    :param data_format: ``CSV`` or ``JSON``.
    :param row_multiplier: repeat the base rows this many times.
    """

    def __init__(self, seed: int, data_source: dict[str, Any], data_format: str, row_multiplier: int = 1) -> None:
        self.base_rows = int(data_source.get("MaxResults") or DEFAULT_MESSAGE_INSIGHTS_ROWS)
        self.n_rows = self.base_rows * max(1, row_multiplier)
        start: datetime = data_source["StartDate"]
        end: datetime = data_source["EndDate"]
        start_s = int(start.timestamp())
        span = max(1, int(end.timestamp()) - start_s)
        include = data_source.get("Include") or {}

        def pick(key: str, default: list[bytes]) -> list[bytes]:
            values = include.get(key)
            return [v.encode("utf-8") for v in values] if values else default

        froms, dests, subjects = pick("FromEmailAddress", _FROM), pick("Destination", _DEST), pick("Subject", _SUBJECTS)
        isps, deliveries = pick("Isp", _ISPS), pick("LastDeliveryEvent", _DELIVERY)
        engagements = pick("LastEngagementEvent", _ENGAGEMENT)
        csv_mode = data_format == "CSV"
        enc = _csv_field if csv_mode else _json_str
        seed32 = seed & 0xFFFFFFFF
        self._templates: list[bytes] = []
        for j in range(min(self.base_rows, _TEMPLATE_PERIOD)):
            h = mix64(seed, j)
            ts = datetime.fromtimestamp(start_s + h % span, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            msg_id = b"%08x-%04x-%04x-%%012x" % (seed32, (h >> 8) & 0xFFFF, (h >> 24) & 0xFFFF)
            fields = [
                froms[(h >> 3) % len(froms)],
                dests[(h >> 11) % len(dests)],
                subjects[(h >> 17) % len(subjects)],
                isps[(h >> 23) % len(isps)],
                deliveries[(h >> 29) % len(deliveries)],
                engagements[(h >> 37) % len(engagements)],
            ]
            if csv_mode:
                parts = [msg_id, ts.encode(), *[enc(f) for f in fields], b"%d"]
                self._templates.append(b",".join(parts))
            else:
                names = MESSAGE_INSIGHTS_COLUMNS
                values = [b'"' + msg_id + b'"', b'"' + ts.encode() + b'"', *[enc(f) for f in fields], b"%d"]
                body = b",".join(b'"%s":%s' % (n.encode(), v) for n, v in zip(names, values, strict=True))
                self._templates.append(b"{" + body + b"}")
        self._period = len(self._templates)
        widest = max(len(t % (self.n_rows, self.n_rows)) for t in self._templates)
        self.row_len = widest + 1
        if csv_mode:
            self.header = (",".join(MESSAGE_INSIGHTS_COLUMNS) + "\n").encode()
            self.content_type = "text/csv"
        else:
            self.header = b""
            self.content_type = "application/json"

    def render_row(self, i: int) -> bytes:
        """
        Row ``i`` without padding.

        :param i: the 0-based row index.
        """
        return self._templates[i % self._period] % (i, i)

    def rows(self, start: int, stop: int) -> bytes:
        """
        Padded rows ``start..stop-1`` (fast path).

        :param start: first row index.
        :param stop: one past the last row index.
        """
        width = self.row_len - 1
        tpl, period = self._templates, self._period
        return b"".join([(tpl[i % period] % (i, i)).ljust(width) + b"\n" for i in range(start, stop)])


def _days(start: datetime, end: datetime) -> list[bytes]:
    """
    UTC dates from ``start`` to ``end``, both inclusive, as ``YYYY-MM-DD`` bytes.

    :param start: the first instant.
    :param end: the last instant.
    """
    first: date = start.astimezone(timezone.utc).date()
    last: date = end.astimezone(timezone.utc).date()
    count = max(1, (last - first).days + 1)
    return [(first + timedelta(days=d)).isoformat().encode() for d in range(count)]


class MetricsFile(ExportFile):
    """
    Daily VDM metric rows.

    :param seed: the file's seed.
    :param data_source: the validated ``MetricsDataSource`` (datetimes for dates).
    :param data_format: ``CSV`` or ``JSON``.
    :param row_multiplier: repeat the base rows this many times.
    """

    def __init__(self, seed: int, data_source: dict[str, Any], data_format: str, row_multiplier: int = 1) -> None:
        self.seed = seed
        self.days = _days(data_source["StartDate"], data_source["EndDate"])
        dims: list[tuple[str, str]] = []
        for name, values in (data_source.get("Dimensions") or {}).items():
            for value in values:
                if value == "*":
                    dims.extend((name, f"{name.lower()}-{k}") for k in range(3))
                else:
                    dims.append((name, value))
        metrics: Sequence[dict[str, str]] = data_source.get("Metrics") or []
        csv_mode = data_format == "CSV"
        self._combos: list[bytes] = []
        self._rate: list[bool] = []
        for name, value in dims:
            for metric in metrics:
                agg = metric.get("Aggregation", "VOLUME")
                fmt = b"0.%06d" if agg == "RATE" else b"%d"
                fields = [name.encode(), value.encode("utf-8"), metric["Name"].encode(), agg.encode()]
                if csv_mode:
                    tpl = b"%s," + b",".join(_csv_field(f) for f in fields) + b"," + fmt
                else:
                    values = [b'"%s"', *[_json_str(f) for f in fields], fmt]
                    body = b",".join(b'"%s":%s' % (n.encode(), v) for n, v in zip(METRICS_COLUMNS, values, strict=True))
                    tpl = b"{" + body + b"}"
                self._combos.append(tpl)
                self._rate.append(agg == "RATE")
        self._per_day = len(self._combos)
        self.base_rows = len(self.days) * self._per_day
        self.n_rows = self.base_rows * max(1, row_multiplier)
        widest = max((len(t % (b"2000-01-01", 999999)) for t in self._combos), default=0)
        self.row_len = widest + 1
        if csv_mode:
            self.header = (",".join(METRICS_COLUMNS) + "\n").encode()
            self.content_type = "text/csv"
        else:
            self.header = b""
            self.content_type = "application/json"

    def _value(self, i: int, rate: bool) -> int:
        """
        Deterministic metric value of row ``i``.

        :param i: the row index.
        :param rate: whether the metric is a RATE (value in millionths) or a VOLUME.
        """
        h = (i * 2654435761 + self.seed * 40503 + 12345) % 1000003
        return h % 1000000 if rate else h % 100000

    def render_row(self, i: int) -> bytes:
        """
        Row ``i`` without padding.

        :param i: the 0-based row index.
        """
        k = i % self.base_rows
        day, combo = divmod(k, self._per_day)
        return self._combos[combo] % (self.days[day], self._value(i, self._rate[combo]))

    def rows(self, start: int, stop: int) -> bytes:
        """
        Padded rows ``start..stop-1`` (fast path, same values as :meth:`render_row`).

        :param start: first row index.
        :param stop: one past the last row index.
        """
        width = self.row_len - 1
        combos, days, rate, per_day, base = self._combos, self.days, self._rate, self._per_day, self.base_rows
        seed_term = self.seed * 40503 + 12345
        out: list[bytes] = []
        append = out.append
        for i in range(start, stop):
            day, combo = divmod(i % base, per_day)
            h = (i * 2654435761 + seed_term) % 1000003
            append((combos[combo] % (days[day], h % 1000000 if rate[combo] else h % 100000)).ljust(width))
        out.append(b"")
        return b"\n".join(out)


def build_export_file(
    source_type: str, data_source: dict[str, Any], data_format: str, seed: int, row_multiplier: int = 1
) -> ExportFile:
    """
    The export file of a job.

    :param source_type: ``MESSAGE_INSIGHTS`` or ``METRICS_DATA``.
    :param data_source: the validated source (``MessageInsightsDataSource`` or ``MetricsDataSource``).
    :param data_format: ``CSV`` or ``JSON``.
    :param seed: the file's seed.
    :param row_multiplier: repeat the base rows this many times.
    """
    if source_type == "MESSAGE_INSIGHTS":
        return MessageInsightsFile(seed, data_source, data_format, row_multiplier)
    return MetricsFile(seed, data_source, data_format, row_multiplier)


class FailedRecordsFile(ExportFile):
    """The (header-only) CSV behind ``FailureInfo.FailedRecordsS3Url``."""

    header = b"record,error_message\n"
    content_type = "text/csv"

    def render_row(self, i: int) -> bytes:  # pragma: no cover - there are no rows
        """
        Never called: the file has no rows.

        :param i: the row index.
        """
        return b""
