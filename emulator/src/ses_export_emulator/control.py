"""
:class:`SesExportEmulator`: run the emulator in a background thread with its own event loop.

Control methods come from the control-operation table
(:data:`~ses_export_emulator.operations.OPERATIONS`) and are thread-safe: they run on
the server's loop (the state is loop-confined).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, overload
from urllib.parse import urlencode

from ses_export_emulator import operations
from ses_export_emulator.config import DEFAULT_HOST, DEFAULT_REGION, EmulatorOptions
from ses_export_emulator.core import EmulatorCore
from ses_export_emulator.faults import FaultConfig
from ses_export_emulator.jobs import Rule

if TYPE_CHECKING:
    from aiohttp import web

P = ParamSpec("P")
T = TypeVar("T")
DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"


class _Control(Generic[P, T]):
    """
    A :class:`SesExportEmulator` method running one control operation on the server's loop.

    :param apply: the operation's function (``apply(core, ...)``).
    """

    def __init__(self, apply: Callable[Concatenate[EmulatorCore, P], T]) -> None:
        self.apply = apply
        self.__doc__ = apply.__doc__

    @overload
    def __get__(self, emu: None, owner: type[Any]) -> _Control[P, T]: ...

    @overload
    def __get__(self, emu: SesExportEmulator, owner: type[Any]) -> Callable[P, T]: ...

    def __get__(self, emu: SesExportEmulator | None, owner: type[Any]) -> _Control[P, T] | Callable[P, T]:
        """
        The bound method.

        :param emu: the emulator (``None``: accessed on the class).
        :param owner: the class.
        """
        if emu is None:
            return self
        apply = self.apply

        @functools.wraps(apply)
        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return emu._call(lambda core: apply(core, *args, **kwargs))

        signature = inspect.signature(apply)
        method.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
        return method


class SesExportEmulator:
    """
    A local SES v2 export-job service on 127.0.0.1.

    ``with SesExportEmulator(port=0, seed=0, time_scale=0.01) as emu: emu.client().list_export_jobs()``

    :param host: address to bind (loopback only unless ``allow_non_loopback``).
    :param port: port (0: a free port; see :attr:`port` after start).
    :param seed: seeds JobIds, export files, URL signatures and fault decisions.
    :param time_scale: multiplies job durations, URL lifetimes and the create-rate period.
    :param created_seconds: nominal seconds in ``CREATED``.
    :param processing_seconds: nominal seconds in ``PROCESSING``.
    :param row_multiplier: multiplies export files' row counts.
    :param create_rate_limit: CreateExportJob calls per nominal second (``None``: unlimited).
    :param url_expiry_seconds: nominal download-URL lifetime.
    :param max_unfinished_jobs: unfinished jobs allowed at once per source type (more:
        ``LimitExceededException``; ``None``: unlimited).
    :param vdm_enabled: whether the account has VDM enabled (else every create is refused).
    :param show_created: report ``CREATED`` for new jobs (real SES: ``PROCESSING`` at once).
    :param not_found_style: an unknown JobId as real SES (``"400"``, "Invalid JobId") or as the model
        documents it (``"404"``, ``NotFoundException``).
    :param exported_records_count: also report ``Statistics.ExportedRecordsCount`` (real SES does not).
    :param default_page_size: ListExportJobs page size without ``PageSize``.
    :param region: the region in connection values.
    :param allow_non_loopback: allow a non-loopback ``host``.
    :param faults: initial faults (:class:`FaultConfig` or a dict of its fields).
    :param rules: initial outcome rules (:class:`Rule` or dicts of its fields).
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        seed: int = 0,
        time_scale: float = 1.0,
        created_seconds: float = 1.0,
        processing_seconds: float = 2.0,
        row_multiplier: int = 1,
        create_rate_limit: float | None = 1.0,
        url_expiry_seconds: int = 300,
        max_unfinished_jobs: int | None = 20,
        vdm_enabled: bool = True,
        show_created: bool = False,
        not_found_style: Literal["400", "404"] = "400",
        exported_records_count: bool = False,
        default_page_size: int = 100,
        region: str = DEFAULT_REGION,
        allow_non_loopback: bool = False,
        faults: FaultConfig | dict[str, Any] | None = None,
        rules: list[Rule | dict[str, Any]] | None = None,
    ) -> None:
        fault_config = faults if isinstance(faults, FaultConfig) else FaultConfig(**(faults or {}))
        self.options = EmulatorOptions(
            host=host,
            port=port,
            seed=seed,
            time_scale=time_scale,
            created_seconds=created_seconds,
            processing_seconds=processing_seconds,
            row_multiplier=row_multiplier,
            create_rate_limit=create_rate_limit,
            url_expiry_seconds=url_expiry_seconds,
            max_unfinished_jobs=max_unfinished_jobs,
            vdm_enabled=vdm_enabled,
            show_created=show_created,
            not_found_style=not_found_style,
            exported_records_count=exported_records_count,
            default_page_size=default_page_size,
            region=region,
            allow_non_loopback=allow_non_loopback,
            faults=fault_config,
        )
        self._initial_rules = list(rules or [])
        self._core: EmulatorCore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port: int = 0

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def region(self) -> str:
        """The region (``us-east-1`` by default)."""
        return self.options.region

    @property
    def host(self) -> str:
        """The bound host."""
        return self.options.host

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` (after :meth:`start`)."""
        if not self.port:
            raise RuntimeError("The emulator is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SesExportEmulator:
        """Bind the socket and start serving in a background thread; returns ``self``."""
        if self.running:
            return self
        from aiohttp import web

        from ses_export_emulator.server import EmulatorCore, build_app

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.options.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        core = self._core = EmulatorCore(self.options)
        for rule in self._initial_rules:
            if isinstance(rule, Rule):
                operations.add_rule(core, rule)
            else:
                operations.add_rule(core, **rule)
        loop = self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        async def startup() -> None:
            runner = web.AppRunner(build_app(core), handle_signals=False, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            await web.SockSite(runner, sock, backlog=4096).start()
            self._runner = runner

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(startup())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                if self._runner is not None:
                    loop.run_until_complete(self._runner.cleanup())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"ses-export-emulator-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread.join()
            self._thread = None
            sock.close()
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if thread.is_alive() and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        self._thread = None
        self._runner = None

    def __enter__(self) -> SesExportEmulator:
        """Start; see :meth:`start`."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop; see :meth:`stop`."""
        self.stop()

    # -- connection helpers ------------------------------------------------------------------
    def airflow_conn_dict(self) -> dict[str, Any]:
        """The Airflow AWS connection (as a dict) pointing at this emulator."""
        return {
            "conn_type": "aws",
            "login": DUMMY_ACCESS_KEY,
            "password": DUMMY_SECRET_KEY,
            "extra": {"region_name": self.region, "endpoint_url": self.endpoint_url},
        }

    def airflow_conn_json(self) -> str:
        """The JSON connection value for ``AIRFLOW_CONN_AWS_DEFAULT`` (Airflow 2.10 and 3.x)."""
        return json.dumps(self.airflow_conn_dict())

    def airflow_conn_uri(self) -> str:
        """The URI connection value (``aws://testing:testing@/?region_name=...&endpoint_url=...``)."""
        query = urlencode({"region_name": self.region, "endpoint_url": self.endpoint_url})
        return f"aws://{DUMMY_ACCESS_KEY}:{DUMMY_SECRET_KEY}@/?{query}"

    def client(self, **kwargs: Any) -> Any:
        """
        A boto3 ``sesv2`` client pointed at this emulator (dummy credentials).

        :param kwargs: extra ``boto3.client`` arguments (e.g. ``config=``).
        """
        import boto3

        options: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": DUMMY_ACCESS_KEY,
            "aws_secret_access_key": DUMMY_SECRET_KEY,
        }
        options.update(kwargs)
        return boto3.client("sesv2", **options)

    # -- control -------------------------------------------------------------------------------
    def _call(self, func: Callable[[EmulatorCore], T]) -> T:
        """
        Run ``func(core)`` on the server's loop and return its result.

        :param func: the function.
        """
        core, loop = self._core, self._loop
        if core is None or loop is None or not self.running:
            raise RuntimeError("The emulator is not running")
        if threading.current_thread() is self._thread:
            return func(core)

        async def call() -> T:
            return func(core)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=30)

    # One method per row of the control-operation table (operations.OPERATIONS), same name, signature
    # and docstring as the row's function without its ``core`` argument.
    health = _Control(operations.health)
    stats = _Control(operations.stats)
    reset_stats = _Control(operations.reset_stats)
    faults = _Control(operations.faults)
    set_faults = _Control(operations.set_faults)
    clear_faults = _Control(operations.clear_faults)
    throttle_all = _Control(operations.throttle_all)
    throttle_next = _Control(operations.throttle_next)
    fail_all = _Control(operations.fail_all)
    rules = _Control(operations.rules)
    add_rule = _Control(operations.add_rule)
    fail_next = _Control(operations.fail_next)
    clear_rules = _Control(operations.clear_rules)
    advance_after = _Control(operations.advance_after)
    set_vdm = _Control(operations.set_vdm)
    set_volumes = _Control(operations.set_volumes)
    clear_volumes = _Control(operations.clear_volumes)
    jobs = _Control(operations.jobs)
    complete_job = _Control(operations.complete_job)
    fail_job = _Control(operations.fail_job)
    delete_job = _Control(operations.delete_job)
    expire_urls = _Control(operations.expire_urls)
    issued_secrets = _Control(operations.issued_secrets)
