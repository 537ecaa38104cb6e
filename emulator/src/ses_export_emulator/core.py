"""
:class:`EmulatorCore`: the state of one emulator (jobs, faults, URL signer, counters).

It has no aiohttp dependency, so the control-operation table can name it without starting a server.
The control operations that change it are in :mod:`~ses_export_emulator.operations`.
"""

from __future__ import annotations

from ses_export_emulator.config import EmulatorOptions
from ses_export_emulator.exportfile import mix64
from ses_export_emulator.faults import FaultInjector, TokenBucket
from ses_export_emulator.jobs import JobStore
from ses_export_emulator.presign import UrlSigner
from ses_export_emulator.stats import Stats


class EmulatorCore:
    """
    The state of one emulator: jobs, faults, URL signer, counters. Event-loop confined.

    :param options: the emulator's options.
    """

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.store = JobStore(
            seed=options.seed,
            created_seconds=options.created_seconds,
            processing_seconds=options.processing_seconds,
            time_scale=options.time_scale,
            row_multiplier=options.row_multiplier,
            show_created=options.show_created,
            default_page_size=options.default_page_size,
        )
        self.faults = FaultInjector(options.faults, seed=options.seed)
        secret = mix64(options.seed, 0x51A7).to_bytes(8, "big") * 4
        self.signer = UrlSigner(secret, options.region, options.url_expiry_seconds, options.time_scale)
        self.signer.expire_immediately = options.faults.expire_urls_immediately
        self.stats = Stats()
        self.create_bucket: TokenBucket | None = None
        if options.create_rate_limit is not None:
            self.create_bucket = TokenBucket(options.create_rate_limit / options.time_scale)
