"""
Fault injection for the four API operations and for downloads, deterministic for a given seed.

API faults (checked in this order on every API request): latency, connection reset (probability),
fail-everything storm, throttle-everything storm, throttling of the next N calls, rate limit (token
bucket over all API operations), 5xx (probability). Download faults: drop the connection after K
bytes, expire URLs at once, answer with another body (a proxy's page, say) and content type. Storm
durations are wall-clock seconds, never scaled by ``time_scale``; "the next N calls" windows are
counted in calls, whatever the clock.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal


@dataclass
class FaultConfig:
    """
    Fault settings. All default to "no fault".

    :param api_rate_limit: API requests per second (all four operations together) above which
        requests get ``TooManyRequestsException`` (``None``: unlimited).
    :param error_rate: probability of answering an API request with ``error_status``.
    :param error_status: 500 (``InternalFailure``) or 503 (``ServiceUnavailable``).
    :param latency: seconds added to every API request (awaited, never blocking the loop).
    :param reset_rate: probability of aborting the connection without a response.
    :param download_drop_after: abort downloads after this many body bytes (``None``: never).
    :param download_latency: seconds added before a download's first byte.
    :param expire_urls_immediately: new download URLs are expired from the start.
    :param deny_operations: API operations answered with 403 ``AccessDeniedException``, as for an IAM
        policy that does not grant them (e.g. ``["ListExportJobs"]``).
    :param download_body: answer every download with 200 and this text instead of the file, as a proxy's
        error page or a captive portal does (``None``: the file).
    :param download_content_type: the Content-Type of downloads (``None``: the file's, or ``text/html`` with
        ``download_body``).
    """

    api_rate_limit: float | None = None
    error_rate: float = 0.0
    error_status: Literal[500, 503] = 500
    latency: float = 0.0
    reset_rate: float = 0.0
    download_drop_after: int | None = None
    download_latency: float = 0.0
    expire_urls_immediately: bool = False
    deny_operations: tuple[str, ...] = ()
    download_body: str | None = None
    download_content_type: str | None = None

    def update(self, **options: Any) -> None:
        """
        Set some fields; unknown names are an error.

        :param options: field values.
        """
        names = {f.name for f in fields(self)}
        unknown = set(options) - names
        if unknown:
            raise ValueError(
                f"Unknown fault option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}"
            )
        if "error_status" in options and int(options["error_status"]) not in (500, 503):
            raise ValueError("error_status must be 500 or 503")
        if "deny_operations" in options:
            options["deny_operations"] = tuple(options["deny_operations"] or ())
        for key, value in options.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return asdict(self)


class TokenBucket:
    """
    A token bucket: ``rate`` tokens per second, burst ``max(1, rate)``.

    :param rate: tokens per second.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        """
        Take a token if one is available.

        :param now: monotonic time (default now).
        """
        now = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class FaultInjector:
    """
    Decides, per request, which fault (if any) to inject.

    :param config: the settings (mutable; see :meth:`set`).
    :param seed: seeds the random decisions.
    """

    def __init__(self, config: FaultConfig | None = None, seed: int = 0) -> None:
        self.config = config or FaultConfig()
        self._rng = random.Random(seed ^ 0x5EED)
        self._bucket: TokenBucket | None = None
        self.throttle_until = 0.0
        self.fail_until = 0.0
        self.fail_status = 503
        #: calls still to throttle, by operation name (``None``: any operation)
        self.throttle_calls: dict[str | None, int] = {}

    def set(self, **options: Any) -> None:
        """
        Change fault settings (see :class:`FaultConfig`).

        :param options: field values.
        """
        self.config.update(**options)
        if "api_rate_limit" in options:
            self._bucket = None

    def clear(self) -> None:
        """Remove every fault, storms included."""
        self.config = FaultConfig()
        self._bucket = None
        self.throttle_until = self.fail_until = 0.0
        self.throttle_calls = {}

    def throttle_all(self, seconds: float) -> None:
        """
        Answer every API call with 429 for the next ``seconds`` wall-clock seconds.

        :param seconds: storm duration.
        """
        self.throttle_until = time.monotonic() + seconds

    def throttle_next(self, n: int, operation: str | None = None) -> None:
        """
        Answer the next ``n`` calls of ``operation`` (``None``: of any operation) with 429, whenever they come.

        :param n: how many calls (replaces what was left of an earlier count for ``operation``).
        :param operation: an API operation name, or ``None``.
        """
        if n < 0:
            raise ValueError(f"throttle_next: n must be 0 or more, got {n}")
        self.throttle_calls[operation] = n

    def _take_throttled_call(self, operation: str | None) -> bool:
        for key in (operation, None) if operation is not None else (None,):
            if self.throttle_calls.get(key, 0) > 0:
                self.throttle_calls[key] -= 1
                return True
        return False

    def fail_all(self, seconds: float, status: int = 503) -> None:
        """
        Answer every API call with ``status`` for the next ``seconds`` wall-clock seconds.

        :param seconds: storm duration.
        :param status: 500 or 503.
        """
        self.fail_until = time.monotonic() + seconds
        self.fail_status = status

    def api_decision(self, operation: str | None = None) -> str | None:
        """
        ``"reset"``, ``"storm_error"``, ``"throttle"``, ``"error"`` or ``None`` for one API request (latency aside).

        :param operation: the request's API operation name.
        """
        cfg = self.config
        now = time.monotonic()
        if cfg.reset_rate and self._rng.random() < cfg.reset_rate:
            return "reset"
        if now < self.fail_until:
            return "storm_error"
        if now < self.throttle_until or self._take_throttled_call(operation):
            return "throttle"
        if cfg.api_rate_limit is not None:
            if self._bucket is None or self._bucket.rate != cfg.api_rate_limit:
                self._bucket = TokenBucket(cfg.api_rate_limit)
            if not self._bucket.take(now):
                return "throttle"
        if cfg.error_rate and self._rng.random() < cfg.error_rate:
            return "error"
        return None

    def state(self) -> dict[str, Any]:
        """Settings plus remaining storm seconds and calls still to throttle (by operation, ``"any"``)."""
        now = time.monotonic()
        return {
            **self.config.to_dict(),
            "throttle_all_remaining": max(0.0, self.throttle_until - now),
            "fail_all_remaining": max(0.0, self.fail_until - now),
            "throttle_next_remaining": {op or "any": n for op, n in self.throttle_calls.items() if n},
        }
