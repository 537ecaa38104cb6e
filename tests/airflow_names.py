"""
DAG-authoring names for the tests, imported the way a user's DAG file imports them, and the other
Airflow-version differences only the tests' harness meets.

The package's ``_compat`` only holds what the package itself needs; tests that build DAGs take
``DAG``, ``task`` and ``Param`` from here, and the harness (``tests/conftest.py``) its ``DagBag``,
DB registration and ``dag.test()`` logging set-up. ``AIRFLOW_V_3`` is found by probing (the task SDK's
``DAG`` imports), independently of ``_compat``'s version check, so a test can compare the two.
"""

from __future__ import annotations

from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, Param, task

    AIRFLOW_V_3 = True
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[assignment,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.models.param import Param  # type: ignore[assignment,no-redef]

    AIRFLOW_V_3 = False


def daily_data_interval_schedule() -> Any:
    """
    A daily schedule whose runs cover the previous UTC day (``data_interval_start`` < ``data_interval_end``).

    Airflow 3 maps ``"@daily"`` and timedeltas to trigger timetables, whose runs have an empty data
    interval; ``CronDataIntervalTimetable`` behaves the same on Airflow 2 and 3.
    """
    from airflow.timetables.interval import CronDataIntervalTimetable

    return CronDataIntervalTimetable("0 0 * * *", timezone="UTC")


def dag_bag(**kwargs: Any) -> Any:
    """
    A ``DagBag`` (``airflow.dag_processing.dagbag`` from Airflow 3.1, ``airflow.models.dagbag`` before).

    :param kwargs: ``DagBag`` arguments.
    """
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.x, 3.0
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef,attr-defined,unused-ignore]
    return DagBag(**kwargs)


def sync_bag_to_db(bag: Any, bundle_name: str, bundle_version: str | None) -> None:
    """
    Serialize a ``DagBag``'s DAGs into the metadata DB (Airflow 3 only).

    :param bag: the ``DagBag``.
    :param bundle_name: the DAG bundle they belong to.
    :param bundle_version: that bundle's version (``None``: unversioned).
    """
    try:
        from airflow.dag_processing.dagbag import sync_bag_to_db as sync
    except ImportError:  # Airflow 3.0: a DagBag method, and in-memory DAGs lack what parsing a file sets
        for dag in bag.dags.values():
            if dag.relative_fileloc is None:
                dag.relative_fileloc = dag.fileloc
        bag.sync_to_db(bundle_name, bundle_version)
        return
    sync(bag, bundle_name, bundle_version)


def reuse_dag_test_execution_api() -> None:
    """
    Have ``dag.test()`` build its in-process Execution API once per session, as Airflow 3.3 does.

    Airflow 3.0-3.2 build a new ``InProcessExecutionAPI`` (a FastAPI app with Cadwyn's versioned routers
    and an ASGI bridge with its own event loop) for every task ``dag.test()`` runs: seconds of CPU per
    task on Airflow 3.2. apache/airflow#65235 (in Airflow 3.3) caches it, and stops a trigger's client
    from keeping the previous DAG's ``dag_bag`` override; this applies the same two changes where they
    are missing. Airflow 2 runs tasks without the Execution API: nothing to do.
    """
    if not AIRFLOW_V_3:
        return
    import functools

    from airflow.sdk.execution_time import supervisor

    if hasattr(supervisor.in_process_api_server, "cache_info"):
        return
    supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(supervisor.in_process_api_server)
    tester = supervisor.InProcessTestSupervisor
    api_client = tester._api_client

    def api_client_without_stale_dag_bag(dag: Any = None) -> Any:
        if dag is None:
            from airflow.api_fastapi.common.dagbag import dag_bag_from_app

            supervisor.in_process_api_server().app.dependency_overrides.pop(dag_bag_from_app, None)
        return api_client(dag)

    tester._api_client = staticmethod(api_client_without_stale_dag_bag)


def configure_dag_test_logging() -> None:
    """
    Have ``dag.test()`` log tasks at ``[logging] logging_level`` in plain text, as Airflow 3.1+ does.

    Airflow 3.1+ configures structlog when ``airflow`` is imported. Airflow 3.0 leaves it unconfigured
    for ``dag.test()``, whose in-process tasks then print every debug line (the in-process supervisor's
    message dump included) in ANSI colours, with rich tracebacks wrapped at 100 columns, so neither the
    level a deployment logs at nor searchable text. Airflow 2 logs tasks through ``logging``: nothing to do.
    """
    if not AIRFLOW_V_3:
        return
    import structlog

    if structlog.is_configured():
        return
    import logging

    from airflow.configuration import conf

    level = logging.getLevelName(conf.get("logging", "logging_level", fallback="INFO").upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )


def serialize_task(task: Any) -> dict[str, Any]:
    """A task as the DAG processor serializes it (``OperatorSerialization`` from Airflow 3.3 on), mapped or not."""
    try:
        from airflow.serialization.serialized_objects import OperatorSerialization as serializer
    except ImportError:  # Airflow < 3.3
        from airflow.serialization.serialized_objects import (  # type: ignore[attr-defined,no-redef]
            SerializedBaseOperator as serializer,
        )
    if hasattr(task, "expand_input"):
        return serializer.serialize_mapped_operator(task)
    return serializer.serialize_operator(task)


__all__ = [
    "AIRFLOW_V_3",
    "DAG",
    "Param",
    "configure_dag_test_logging",
    "dag_bag",
    "daily_data_interval_schedule",
    "reuse_dag_test_execution_api",
    "serialize_task",
    "sync_bag_to_db",
    "task",
]


def allow_execute_in_this_thread() -> None:
    """
    Let a test call an operator's ``execute`` from a thread it started (to run two copies at once).

    Airflow 2's ``ExecutorSafeguard`` keeps its bookkeeping in a thread-local set up on the importing thread only:
    ``execute`` in another thread raises ``AttributeError: ... no attribute 'callers'``. Airflow 3 needs nothing.
    """
    if AIRFLOW_V_3:
        return
    from airflow.models.baseoperator import ExecutorSafeguard

    sentinel = ExecutorSafeguard._sentinel
    if not hasattr(sentinel, "callers"):
        sentinel.callers = {}


def masker_redact(line: str) -> str:
    """``line`` as the running Airflow's secrets masker writes it (its home moved: 3.1+, 3.0, 2.x)."""
    try:
        from airflow.sdk.log import redact
    except ImportError:
        try:
            from airflow.sdk.execution_time.secrets_masker import redact  # type: ignore[no-redef]
        except ImportError:
            from airflow.utils.log.secrets_masker import redact  # type: ignore[no-redef]
    return str(redact(line))


def forget_masked_values() -> None:
    """
    Empty the secrets masker of this process (every home it has had: 3.1+, 3.0, 2.x).

    Each registration recompiles the masker's pattern of every value so far: across a whole test session the
    values of thousands of URLs would make every later GetExportJob slower than the URLs' scaled lifetime.
    """
    import sys

    for name in (
        "airflow.sdk._shared.secrets_masker",
        "airflow._shared.secrets_masker",
        "airflow.sdk.execution_time.secrets_masker",
        "airflow.utils.log.secrets_masker",
    ):
        module = sys.modules.get(name)
        masker = getattr(module, "_secrets_masker", None)
        if masker is not None:
            instance = masker()
            instance.patterns = set()
            instance.replacer = None
