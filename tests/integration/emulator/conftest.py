"""Fixtures for the emulator conformance suite, on the emulator's own pytest plugin (its ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config

from ses_export_emulator import SesExportEmulator

# botocore reads ``max_attempts`` as *retries* (1 => 2 attempts); ``total_max_attempts`` counts the first try.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture
def emu(ses_export_emulator_factory: Callable[..., SesExportEmulator]) -> SesExportEmulator:
    """A fast emulator (time_scale 0.01) without create-rate limiting."""
    return ses_export_emulator_factory(create_rate_limit=None)


@pytest.fixture
def client(emu: SesExportEmulator) -> Any:
    """A boto3 sesv2 client for ``emu`` with retries disabled."""
    return emu.client(config=NO_RETRIES)
