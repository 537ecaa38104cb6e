"""Options of one emulator instance (shared by the Python handle, the CLI and the pytest plugin)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from ses_export_emulator.faults import FaultConfig

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4590
DEFAULT_REGION = "us-east-1"


class NonLoopbackRefused(ValueError):
    """The emulator was asked to bind a non-loopback address without ``allow_non_loopback``."""


def is_loopback(host: str) -> bool:
    """
    Whether ``host`` is a loopback address (or ``localhost``).

    :param host: a host name or IP address.
    """
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class EmulatorOptions:
    """
    Everything configurable about one emulator.

    :param host: address to bind; loopback only unless ``allow_non_loopback``.
    :param port: port to bind (0: a free port).
    :param seed: seeds JobIds, export files, URL signing keys and fault decisions.
    :param time_scale: multiplies job durations, URL lifetimes and the create rate's period
        (0.01: everything 100x faster). Storm durations are never scaled.
    :param created_seconds: nominal seconds a job stays ``CREATED``.
    :param processing_seconds: nominal seconds a job stays ``PROCESSING``.
    :param row_multiplier: multiplies the row count of export files.
    :param create_rate_limit: CreateExportJob calls per nominal second (``None``: unlimited); the
        real limit is ``create_rate_limit / time_scale`` calls per wall-clock second.
    :param max_unfinished_jobs: unfinished jobs allowed at once per source type (``METRICS_DATA``,
        ``MESSAGE_INSIGHTS``), as real SES counts them; one more create of that type gets 400
        ``LimitExceededException`` (``None``: unlimited).
    :param vdm_enabled: whether the emulated account has Virtual Deliverability Manager enabled;
        without it every CreateExportJob is refused (400 ``BadRequestException``), as in real SES.
    :param show_created: report ``CREATED`` during the first ``created_seconds`` (real SES answers
        ``PROCESSING`` from the first GetExportJob on, so by default ``CREATED`` is never seen).
    :param not_found_style: how an unknown JobId is answered: ``"400"`` as real SES does
        (``BadRequestException`` "Invalid JobId"), or ``"404"`` as the model documents (``NotFoundException``).
    :param exported_records_count: also report ``Statistics.ExportedRecordsCount`` (the records in the
        file); real SES reports only ``ProcessedRecordsCount``.
    :param default_page_size: ListExportJobs page size when the request gives no ``PageSize``.
    :param url_expiry_seconds: nominal lifetime of download URLs (``X-Amz-Expires``).
    :param region: region reported in connection values and URLs.
    :param allow_non_loopback: allow binding a non-loopback address.
    :param faults: initial fault settings.
    """

    host: str = DEFAULT_HOST
    port: int = 0
    seed: int = 0
    time_scale: float = 1.0
    created_seconds: float = 1.0
    processing_seconds: float = 2.0
    row_multiplier: int = 1
    create_rate_limit: float | None = 1.0
    max_unfinished_jobs: int | None = 20
    vdm_enabled: bool = True
    show_created: bool = False
    not_found_style: Literal["400", "404"] = "400"
    exported_records_count: bool = False
    default_page_size: int = 100
    url_expiry_seconds: int = 300
    region: str = DEFAULT_REGION
    allow_non_loopback: bool = False
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        """Check values; refuse non-loopback hosts unless allowed."""
        if not self.allow_non_loopback and not is_loopback(self.host):
            raise NonLoopbackRefused(
                f"Refusing to bind non-loopback address {self.host!r}: the emulator accepts any credentials. "
                "Pass allow_non_loopback=True (--allow-non-loopback) if you really mean it."
            )
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")
        if self.row_multiplier < 1:
            raise ValueError(f"row_multiplier must be >= 1, got {self.row_multiplier}")
        if self.create_rate_limit is not None and self.create_rate_limit <= 0:
            raise ValueError(f"create_rate_limit must be > 0 or None, got {self.create_rate_limit}")
        if self.max_unfinished_jobs is not None and self.max_unfinished_jobs < 1:
            raise ValueError(f"max_unfinished_jobs must be >= 1 or None, got {self.max_unfinished_jobs}")
        if self.not_found_style not in ("400", "404"):
            raise ValueError(f"not_found_style must be '400' or '404', got {self.not_found_style!r}")
        if self.default_page_size < 1:
            raise ValueError(f"default_page_size must be >= 1, got {self.default_page_size}")
