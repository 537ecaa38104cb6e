"""
Export files in the layouts real SES writes, generated deterministically and streamed.

Layouts (``ExportDestination.DataFormat``), as real SES writes them, not compressed:

* Message Insights CSV (``text/csv``): every header and value double-quoted and followed by a comma,
  so each line ends with ``,``; the header :data:`MESSAGE_INSIGHTS_HEADER`; timestamps as
  ``2026-09-23 14:05:07.123 UTC``; an empty value is ``""``; one row per recipient of a message.
* Message Insights JSON (``application/json``): ``[`` on its own line, one object per line, every
  object after the first preceded by a comma at the start of its line, then ``]``; the keys of the
  CSV columns, members without a value omitted.
* Metrics CSV: the requested dimension names, then one ``<METRIC>_<AGGREGATION>`` column per metric;
  one row per combination of dimension values with the totals over the whole range (no date column);
  values with four decimals; a field quoted only when it must be. ``*`` lists every value the
  emulated account knows (every ISP, zeros included).
* Metrics JSON: one line, an array of ``{"isp":"Gmail","metrics":{"SEND_VOLUME":120.0000,...}}``
  (dimension keys lower-cased; the numbers written with four decimals, as real SES does).

The emulated account sends :data:`MESSAGES_PER_DAY` messages spread evenly over time;
:func:`messages_in_window` counts those of a range, and is what both kinds of export report as
``ProcessedRecordsCount`` (the messages examined), so a metrics and a Message Insights export of the
same window report the same number. A metrics range is ``[StartDate, EndDate)`` in whole UTC days
(``EndDate``'s day is not in it); a Message Insights range is ``[StartDate, EndDate]`` at any time of
day. When more messages match than ``MaxResults`` (default 1,000) a Message Insights export is a
random sample of that many (seeded by the job), in send order; otherwise it holds every one. RATE
metrics are fractions of SEND in [0, 1].

Size without materialising: a file is ``header + B(0)[skip:] + B(1) + ... + B(n-1) + footer`` for
``n = row_multiplier`` blocks. Block 0 is the export itself; every later block repeats its rows with
a fixed-width tag (the 12-hex-digit group of the message id, or a ``#xxxxxxxx`` suffix on the first
dimension value), so all later blocks have one size and a byte offset maps to (block, offset) by
arithmetic. ``skip`` drops the leading comma of the first JSON object. A block is rendered as
``tag.join(parts)`` when a range touches it; nothing else is held in memory.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import json
import random
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

_MASK = (1 << 64) - 1
DEFAULT_CHUNK_BYTES = 256 * 1024
DEFAULT_MESSAGE_INSIGHTS_ROWS = 1000
#: The first line of a Message Insights CSV export, as real SES writes it (AWS's developer guide lists the fields):
#: the emulator's own statement of the layout, so a reader with a wrong column list fails against it.
MESSAGE_INSIGHTS_HEADER = (
    b'"messageid","sendtimestamp","isp","fromaddress","destination","subject","last_delivery_event",'
    b'"last_engagement_event","last_delivery_event_timestamp","last_engagement_event_timestamp",'
    b'"bounce_sub_type","diagnostic_code",\n'
)
#: Its column names, in order (also the keys of a JSON export's objects).
MESSAGE_INSIGHTS_COLUMNS = tuple(name.strip('"') for name in MESSAGE_INSIGHTS_HEADER.decode().split(",")[:-1])
#: Messages the emulated account sends per UTC day (so a one-day range holds more than 10,000).
MESSAGES_PER_DAY = 14_400


# (recipient domain, ISP); the ISP list is what ``*`` expands to for the ISP dimension.
_DOMAINS = [
    ("gmail.com", "Gmail"),
    ("yahoo.com", "Yahoo"),
    ("hotmail.com", "Hotmail"),
    ("outlook.com", "Hotmail"),
    ("aol.com", "AOL"),
    ("icloud.com", "iCloud"),
    ("comcast.net", "Comcast"),
    ("example.com", "Other"),
]
_LOCAL_PARTS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
_FROM = ["news@example.com", "alerts@example.com", "billing@example.org", "no-reply@example.net"]
_SUBJECTS = ["Your weekly digest", 'Invoice #1042, "paid"', "Welcome aboard", "Password reset", "Spring sale: 20% off"]
# Weighted: most messages are delivered.
_DELIVERY = ["DELIVERY"] * 40 + ["SEND"] * 2 + ["TRANSIENT_BOUNCE", "PERMANENT_BOUNCE", "PERMANENT_BOUNCE"]
_DELIVERY += ["UNDETERMINED_BOUNCE", "COMPLAINT"]
_ENGAGEMENT = [""] * 6 + ["OPEN"] * 3 + ["CLICK"]
_BOUNCES = {
    "PERMANENT_BOUNCE": [
        ("General", "smtp; 550 5.1.1 user unknown"),
        ("NoEmail", "smtp; 550 5.1.1 The email account that you tried to reach does not exist"),
        ("Suppressed", "Amazon SES has suppressed sending to this address because it has a recent history of bouncing"),
    ],
    "TRANSIENT_BOUNCE": [
        ("MailboxFull", "smtp; 552 5.2.2 Mailbox full, try again later"),
        ("General", "smtp; 451 4.7.1 Temporary failure, please retry"),
    ],
    "UNDETERMINED_BOUNCE": [("Undetermined", "")],
}

#: What ``*`` expands to per dimension; ``_ZERO`` values had no traffic in any range.
_KNOWN_VALUES = {
    "ISP": ["Gmail", "Yahoo", "Hotmail", "AOL", "iCloud", "Comcast", "Orange", "Web.de", "Other"],
    "EMAIL_IDENTITY": ["example.com", "example.org", "news@example.com", "legacy.example.net"],
    "CONFIGURATION_SET": ["default", "marketing", "transactional", "unused"],
    "TENANT_NAME": ["tenant-a", "tenant-b", "tenant-c", "retired-tenant"],
}
_ZERO = {"Orange", "Web.de", "legacy.example.net", "unused", "retired-tenant"}
_KNOWN_WEIGHTS = {"Gmail": 0.42, "Yahoo": 0.14, "Hotmail": 0.22, "AOL": 0.03, "iCloud": 0.11, "Comcast": 0.02}
# Per metric: the fraction of SEND it counts, drawn in [low, high).
_METRIC_SHARE = {
    "SEND": (1.0, 1.0),
    "DELIVERY": (0.95, 0.995),
    "OPEN": (0.15, 0.35),
    "CLICK": (0.01, 0.06),
    "COMPLAINT": (0.0, 0.002),
    "PERMANENT_BOUNCE": (0.002, 0.02),
    "TRANSIENT_BOUNCE": (0.001, 0.01),
    "DELIVERY_OPEN": (0.14, 0.33),
    "DELIVERY_CLICK": (0.01, 0.05),
    "DELIVERY_COMPLAINT": (0.0, 0.002),
}


#: The metrics whose daily volumes :func:`~ses_export_emulator.operations.set_volumes` sets per email identity.
SET_VOLUME_METRICS = ("SEND", "PERMANENT_BOUNCE", "COMPLAINT")
#: Daily volumes set per email identity: ``{(identity, "YYYY-MM-DD"): {"SEND": ..., "PERMANENT_BOUNCE": ..., ...}}``.
Volumes = Mapping[tuple[str, str], Mapping[str, float]]


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


def _unit(seed: int, *parts: str) -> float:
    """
    A deterministic number in [0, 1) from ``seed`` and some strings.

    :param seed: the seed.
    :param parts: the strings.
    """
    return mix64(seed, zlib.crc32("\x1f".join(parts).encode("utf-8"))) / 2.0**64


def messages_in_window(start: datetime, end: datetime) -> int:
    """
    How many messages the emulated account sent from ``start`` to ``end`` (``ProcessedRecordsCount``).

    :param start: the range's start.
    :param end: the range's end.
    """
    span_ms = int(end.timestamp() * 1000) - int(start.timestamp() * 1000)
    return max(0, span_ms) * MESSAGES_PER_DAY // 86_400_000


def ses_timestamp(epoch_ms: int) -> str:
    """
    ``2026-09-23 14:05:07.123 UTC``: how SES writes timestamps in Message Insights exports.

    :param epoch_ms: milliseconds since the epoch.
    """
    stamp = datetime.fromtimestamp(epoch_ms // 1000, tz=timezone.utc)
    return f"{stamp:%Y-%m-%d %H:%M:%S}.{epoch_ms % 1000:03d} UTC"


def _join_parts(rows: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
    """
    The parts whose ``tag.join`` renders ``rows``, each ``(before the tag, after the tag)``.

    :param rows: the rows.
    """
    if not rows:
        return [b""]
    parts = [rows[0][0]]
    for (_, after), (before, _) in itertools.pairwise(rows):
        parts.append(after + before)
    parts.append(rows[-1][1])
    return parts


class ExportFile:
    """
    An export file of ``blocks`` blocks of rows; see the module docstring.

    Subclasses set ``header``, ``footer``, ``skip``, ``records``, ``tag_width`` and implement
    :meth:`_rows` (and may override :meth:`_block` for block 0).
    """

    header: bytes = b""
    footer: bytes = b""
    #: Bytes at the start of block 0 that are not in the file (the first JSON object's comma).
    skip: int = 0
    #: Rows in the file (what ``ExportedRecordsCount`` reports).
    records: int = 0
    #: Messages the job examined (what ``ProcessedRecordsCount`` reports): :func:`messages_in_window`.
    processed: int = 0
    blocks: int = 1
    tag_width: int = 0
    content_type: str = "application/octet-stream"

    def _rows(self) -> list[tuple[bytes, bytes]]:
        """The rows of one block, each split where the block's tag goes."""
        return []

    def _tag(self, k: int) -> bytes:
        """
        The tag of block ``k``: ``tag_width`` bytes.

        :param k: the block index.
        """
        return b"%0*x" % (self.tag_width, k) if self.tag_width else b""

    @functools.cached_property
    def _parts(self) -> list[bytes]:
        """The rows of every block, split at the tag (built on first use)."""
        return _join_parts(self._rows())

    def _block(self, k: int) -> bytes:
        """
        Block ``k``, rendered.

        :param k: the block index.
        """
        return self._tag(k).join(self._parts)

    @functools.cached_property
    def _first_size(self) -> int:
        """Size of block 0 (its skipped bytes included)."""
        return len(self._block(0))

    @functools.cached_property
    def _block_size(self) -> int:
        """Size of every block after the first (every block's tag is ``tag_width`` bytes, the first's may differ)."""
        return sum(len(p) for p in self._parts) + (len(self._parts) - 1) * self.tag_width

    @property
    def _body_size(self) -> int:
        """Bytes between header and footer."""
        if not self._first_size:
            return 0
        return self._first_size - self.skip + (self.blocks - 1) * self._block_size

    @property
    def size(self) -> int:
        """Total size in bytes."""
        return len(self.header) + self._body_size + len(self.footer)

    def etag(self, identity: str) -> str:
        """
        A strong ETag for this file's content.

        :param identity: something that identifies the generator inputs (job id and seed).
        """
        digest = hashlib.md5(f"{identity}:{self.records}:{self.size}".encode(), usedforsecurity=False)
        return f'"{digest.hexdigest()}"'

    def _pieces(self, start: int, end: int) -> Iterator[bytes]:
        """
        The bytes ``start..end-1`` of the file in pieces of any size (a block, a header...).

        :param start: first byte offset.
        :param end: one past the last byte offset.
        """
        hlen, body = len(self.header), self._body_size
        if start < hlen:
            yield self.header[start : min(end, hlen)]
        pos, stop = max(start, hlen), min(end, hlen + body)
        if pos < stop:
            # offsets into the concatenated blocks, skipped bytes included
            offset, stop = pos - hlen + self.skip, stop - hlen + self.skip
            first, size = self._first_size, self._block_size
            if offset < first:
                k, block_start = 0, 0
            else:
                k = 1 + (offset - first) // size
                block_start = first + (k - 1) * size
            while block_start < stop:
                data = self._block(k)
                yield data[max(0, offset - block_start) : stop - block_start]
                block_start += len(data)
                k += 1
        footer_at = hlen + body
        if end > footer_at:
            yield self.footer[max(0, start - footer_at) : end - footer_at]

    def iter_range(
        self, first: int = 0, last: int | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> Iterator[bytes]:
        """
        Yield the bytes ``first..last`` (both inclusive, like an HTTP Range) in chunks.

        :param first: first byte offset.
        :param last: last byte offset (inclusive); default the end of the file.
        :param chunk_bytes: chunk size (the last chunk may be shorter).
        """
        size = self.size
        if last is None or last >= size:
            last = size - 1
        if first > last:
            return
        held: list[memoryview] = []
        have = 0
        for piece in self._pieces(first, last + 1):
            view = memoryview(piece)
            while view:
                take = view[: chunk_bytes - have]
                held.append(take)
                have += len(take)
                view = view[len(take) :]
                if have >= chunk_bytes:
                    yield b"".join(held)
                    held, have = [], 0
        if held:
            yield b"".join(held)

    def read_all(self) -> bytes:
        """The whole file (for tests and small files only)."""
        return b"".join(self.iter_range())


def _pick(filters: dict[str, Any], key: str, default: list[str]) -> list[str]:
    """
    The values a field may take: the ``Include`` list for it, else ``default`` minus ``Exclude``.

    :param filters: ``{"Include": {...}, "Exclude": {...}}`` of the data source.
    :param key: the filter key, e.g. ``Isp``.
    :param default: the values without filters.
    """
    included = (filters.get("Include") or {}).get(key)
    if included:
        return list(included)
    excluded = set((filters.get("Exclude") or {}).get(key) or ())
    return [v for v in default if v not in excluded] or default


class MessageInsightsFile(ExportFile):
    """
    A Message Insights export: one row per recipient of the sampled messages.

    :param seed: the file's seed (derived from the job).
    :param data_source: the validated ``MessageInsightsDataSource`` (datetimes for dates).
    :param data_format: ``CSV`` or ``JSON``.
    :param row_multiplier: repeat the rows this many times (fresh message ids), for big files.
    """

    tag_width = 12

    def __init__(self, seed: int, data_source: dict[str, Any], data_format: str, row_multiplier: int = 1) -> None:
        self.seed = seed
        self.csv_mode = data_format == "CSV"
        self.blocks = max(1, row_multiplier)
        self.start_ms = int(data_source["StartDate"].timestamp() * 1000)
        self.span_ms = max(1, int(data_source["EndDate"].timestamp() * 1000) - self.start_ms)
        #: Messages sent in the range (all match: the filters pick the values rows take).
        self.matching = messages_in_window(data_source["StartDate"], data_source["EndDate"])
        limit = int(data_source.get("MaxResults") or DEFAULT_MESSAGE_INSIGHTS_ROWS)
        if self.matching <= limit:
            self.messages: Sequence[int] = range(self.matching)
        else:
            self.messages = sorted(random.Random(seed).sample(range(self.matching), limit))
        self.recipients = [self._recipient_count(i) for i in self.messages]
        self.records = sum(self.recipients) * self.blocks
        self.processed = self.matching * self.blocks
        self.filters = {"Include": data_source.get("Include") or {}, "Exclude": data_source.get("Exclude") or {}}
        if self.csv_mode:
            self.header = MESSAGE_INSIGHTS_HEADER
            self.content_type = "text/csv"
        else:
            self.header, self.footer, self.content_type = b"[\n", b"]\n", "application/json"
            self.skip = 1 if self.records else 0

    def _recipient_count(self, message: int) -> int:
        """
        How many recipients message ``message`` has (1 mostly, sometimes 2 or 3).

        :param message: the message's index in the range.
        """
        h = mix64(self.seed, message)
        return 1 + (h % 8 == 0) + (h % 64 == 0)

    def _rows(self) -> list[tuple[bytes, bytes]]:
        """Every recipient row of the sampled messages, split at the message id's tag."""
        pick = functools.partial(_pick, self.filters)
        froms, subjects = pick("FromEmailAddress", _FROM), pick("Subject", _SUBJECTS)
        deliveries, engagements = pick("LastDeliveryEvent", _DELIVERY), pick("LastEngagementEvent", _ENGAGEMENT)
        isps = (self.filters["Include"] or {}).get("Isp")
        destinations = (self.filters["Include"] or {}).get("Destination")
        slot = max(1, self.span_ms // max(1, self.matching))
        rows: list[tuple[bytes, bytes]] = []
        for message, count in zip(self.messages, self.recipients, strict=True):
            h = mix64(self.seed, message)
            sent = self.start_ms + message * self.span_ms // max(1, self.matching) + (h >> 20) % slot
            id_before = (
                f"0100{sent:012x}-{message:08x}-{h >> 48:04x}-{(h >> 32) & 0xFFFF:04x}-{(h >> 16) & 0xFFFF:04x}-"
            )
            common = {
                "sendtimestamp": ses_timestamp(sent),
                "fromaddress": froms[(h >> 3) % len(froms)],
                "subject": subjects[(h >> 9) % len(subjects)],
            }
            for r in range(count):
                g = mix64(h, r)
                domain, isp = _DOMAINS[g % len(_DOMAINS)]
                if destinations:
                    destination = destinations[(g >> 5) % len(destinations)]
                else:
                    destination = f"{_LOCAL_PARTS[(g >> 5) % len(_LOCAL_PARTS)]}.{(g >> 12) % 1000}@{domain}"
                delivery = deliveries[(g >> 22) % len(deliveries)]
                delivered = sent if delivery == "SEND" else sent + 200 + (g >> 28) % 20_000
                engagement = engagements[(g >> 36) % len(engagements)] if delivery in ("DELIVERY", "COMPLAINT") else ""
                if (self.filters["Include"] or {}).get("LastEngagementEvent"):
                    engagement = engagements[(g >> 36) % len(engagements)]
                bounce, diagnostic = "", ""
                if delivery in _BOUNCES:
                    bounce, diagnostic = _BOUNCES[delivery][(g >> 42) % len(_BOUNCES[delivery])]
                row = {
                    **common,
                    "isp": isps[(g >> 17) % len(isps)] if isps else isp,
                    "destination": destination,
                    "last_delivery_event": delivery,
                    "last_engagement_event": engagement,
                    "last_delivery_event_timestamp": ses_timestamp(delivered),
                    "last_engagement_event_timestamp": (
                        ses_timestamp(delivered + 60_000 + (g >> 46) % 21_600_000) if engagement else ""
                    ),
                    "bounce_sub_type": bounce,
                    "diagnostic_code": diagnostic,
                }
                rows.append(self._encode(id_before, row))
        return rows

    def _encode(self, id_before: str, row: dict[str, str]) -> tuple[bytes, bytes]:
        """
        One row as bytes, split where the message id's tag goes.

        :param id_before: the message id up to its tag (the tag is followed by ``-000000``).
        :param row: the other columns.
        """
        values = [row[c] for c in MESSAGE_INSIGHTS_COLUMNS[1:]]
        if self.csv_mode:
            rest = "".join('"' + v.replace('"', '""') + '",' for v in values)
            return f'"{id_before}'.encode(), f'-000000",{rest}\n'.encode()
        members = {c: v for c, v in zip(MESSAGE_INSIGHTS_COLUMNS[1:], values, strict=True) if v}
        rest = json.dumps(members, separators=(",", ":"), ensure_ascii=False)[1:]
        return f',{{"messageid":"{id_before}'.encode(), f'-000000",{rest}\n'.encode()


class MetricsFile(ExportFile):
    """
    A VDM metrics export: one row per combination of dimension values, totals over the range.

    :param seed: the file's seed (derived from the job).
    :param data_source: the validated ``MetricsDataSource`` (datetimes for dates).
    :param data_format: ``CSV`` or ``JSON``.
    :param row_multiplier: repeat the rows this many times (first dimension value suffixed
        ``#xxxxxxxx``), for big files.
    :param volumes: daily SEND / PERMANENT_BOUNCE / COMPLAINT volumes set per email identity (see
        :func:`~ses_export_emulator.operations.set_volumes`): a set day of an identity replaces that day's generated
        volumes of its rows (split evenly over its rows when the export has other dimensions too); its other
        metrics follow the new SEND.
    """

    def __init__(
        self,
        seed: int,
        data_source: dict[str, Any],
        data_format: str,
        row_multiplier: int = 1,
        volumes: Volumes | None = None,
    ) -> None:
        self.seed = seed
        self.csv_mode = data_format == "CSV"
        self.blocks = max(1, row_multiplier)
        dimensions: dict[str, list[str]] = data_source.get("Dimensions") or {}
        self.dimensions = list(dimensions)
        values = [self._expand(name, vals) for name, vals in dimensions.items()]
        self.combinations = list(itertools.product(*values))
        self.metrics = [(m["Name"], m.get("Aggregation", "VOLUME")) for m in data_source.get("Metrics") or []]
        seconds = (data_source["EndDate"] - data_source["StartDate"]).total_seconds()
        self.days = max(1 / 24, seconds / 86400)
        self.volumes = self._volumes_in_range(volumes or {}, data_source["StartDate"], data_source["EndDate"])
        self.records = len(self.combinations) * self.blocks
        self.processed = messages_in_window(data_source["StartDate"], data_source["EndDate"]) * self.blocks
        self.tag_width = 9 if self.dimensions else 0
        columns = [*self.dimensions, *(f"{name}_{agg}" for name, agg in self.metrics)]
        if self.csv_mode:
            self.header = self._csv_line(columns).encode()
            self.content_type = "text/csv"
        else:
            self.header, self.footer, self.content_type = b"[", b"]\n", "application/json"
            self.skip = 1 if self.records else 0

    def _volumes_in_range(
        self, volumes: Volumes, start: datetime, end: datetime
    ) -> dict[str, list[Mapping[str, float]]]:
        """Per email identity, the set days of ``[start, end)`` (only when the export is broken down by identity)."""
        if "EMAIL_IDENTITY" not in self.dimensions:
            return {}
        days = set()
        day = start.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            days.add(day.date().isoformat())
            day += timedelta(days=1)
        found: dict[str, list[Mapping[str, float]]] = {}
        for (identity, date), values in volumes.items():
            if date in days:
                found.setdefault(identity, []).append(values)
        return found

    @staticmethod
    def _expand(name: str, values: Sequence[str]) -> list[str]:
        """
        The values of one dimension, ``*`` replaced by every value the account knows.

        :param name: the dimension name.
        :param values: the requested values.
        """
        out: list[str] = []
        for value in values:
            out.extend(_KNOWN_VALUES.get(name, ["unknown"]) if value == "*" else [value])
        return list(dict.fromkeys(out))

    @staticmethod
    def _csv_line(fields: Sequence[str]) -> str:
        """
        One CSV line, fields quoted only when they must be.

        :param fields: the fields.
        """
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(fields)
        return buf.getvalue()

    def _values(self, combination: Sequence[str]) -> list[str]:
        """
        The metric values of one combination, formatted with four decimals.

        :param combination: one value per dimension.
        """
        key = [f"{n}={v}" for n, v in zip(self.dimensions, combination, strict=True)]
        weight = 1.0
        for value in combination:
            if value in _ZERO:
                weight = 0.0
            weight *= _KNOWN_WEIGHTS.get(value, 0.05 + 0.45 * _unit(self.seed, "weight", value))
        send: float = round(self.days * MESSAGES_PER_DAY * weight * (0.8 + 0.4 * _unit(self.seed, "send", *key)))
        counts: dict[str, float] = {}
        set_days = self.volumes.get(combination[self.dimensions.index("EMAIL_IDENTITY")]) if self.volumes else None
        if set_days:
            # the generated share of the days not set, plus the set days' volumes split over the identity's rows
            rows = sum(1 for c in self.combinations if self._same_identity(c, combination))
            kept = max(0.0, 1 - len(set_days) / self.days)
            for name in SET_VOLUME_METRICS:
                low, high = _METRIC_SHARE[name]
                generated = round(send * (low + (high - low) * _unit(self.seed, name, *key)))
                counts[name] = generated * kept + sum(float(day.get(name, 0)) for day in set_days) / rows
            send = counts["SEND"]
        out = []
        for name, aggregation in self.metrics:
            low, high = _METRIC_SHARE.get(name, (0.0, 0.05))
            count = counts.get(name, round(send * (low + (high - low) * _unit(self.seed, name, *key))))
            number = float(count) if aggregation == "VOLUME" else (count / send if send else 0.0)
            out.append(f"{number:.4f}")
        return out

    def _same_identity(self, one: Sequence[str], other: Sequence[str]) -> bool:
        index = self.dimensions.index("EMAIL_IDENTITY")
        return one[index] == other[index]

    def _tag(self, k: int) -> bytes:
        """
        The tag of block ``k``: none for block 0 (the export itself), else ``#`` and 8 hex digits.

        :param k: the block index.
        """
        return b"#%08x" % k if k and self.tag_width else b""

    def _rows(self) -> list[tuple[bytes, bytes]]:
        """Every combination's row, split after the first dimension value (where the tag goes)."""
        marker = "#" + "0" * (self.tag_width - 1)
        rows = []
        for combination in self.combinations:
            values = self._values(combination)
            if not combination:
                line = self._csv_line(values) if self.csv_mode else ',{"metrics":{' + self._json_metrics(values) + "}}"
                rows.append((line.encode(), b""))
                continue
            first = combination[0] + marker
            if self.csv_mode:
                line = self._csv_line([first, *combination[1:], *values])
                field = self._csv_line([first])[:-1]
                cut = len(field) - len(marker) - field.endswith('"')
            else:
                dims = [
                    json.dumps(n.lower()) + ":" + json.dumps(v)
                    for n, v in zip(self.dimensions, combination, strict=True)
                ]
                dims[0] = json.dumps(self.dimensions[0].lower()) + ":" + json.dumps(first)
                line = ",{" + ",".join(dims) + ',"metrics":{' + self._json_metrics(values) + "}}"
                cut = 2 + len(dims[0]) - 1 - len(marker)
            rows.append((line[:cut].encode(), line[cut + len(marker) :].encode()))
        return rows

    def _json_metrics(self, values: Sequence[str]) -> str:
        """
        The members of a JSON row's ``metrics`` object (numbers written with four decimals).

        :param values: the formatted values, one per metric.
        """
        return ",".join(f'"{n}_{a}":{v}' for (n, a), v in zip(self.metrics, values, strict=True))


def build_export_file(
    source_type: str,
    data_source: dict[str, Any],
    data_format: str,
    seed: int,
    row_multiplier: int = 1,
    volumes: Volumes | None = None,
) -> ExportFile:
    """
    The export file of a job.

    :param source_type: ``MESSAGE_INSIGHTS`` or ``METRICS_DATA``.
    :param data_source: the validated source (``MessageInsightsDataSource`` or ``MetricsDataSource``).
    :param data_format: ``CSV`` or ``JSON``.
    :param seed: the file's seed.
    :param row_multiplier: repeat the rows this many times.
    :param volumes: daily volumes set per email identity (metrics exports only).
    """
    if source_type == "MESSAGE_INSIGHTS":
        return MessageInsightsFile(seed, data_source, data_format, row_multiplier)
    return MetricsFile(seed, data_source, data_format, row_multiplier, volumes)


class FailedRecordsFile(ExportFile):
    """The (header-only) CSV behind ``FailureInfo.FailedRecordsS3Url``."""

    header = b"record,error_message\n"
    content_type = "text/csv"
