"""
The only module that knows how Airflow 2.10+ and Airflow 3.x (and Amazon provider 9.0.0 vs newer) differ.

Every other module of the package imports version-dependent names from here; nothing else lives here
(DAG-authoring names such as ``DAG`` and ``task`` belong to the user's DAG file, not to us). Each name
is tried at its Airflow 3 location first and falls back to its Airflow 2 location, so no deprecated
path is used where the new one exists. Only modules a DAG file's operators load anyway are imported
at module level: this module is on the import path of every DAG using our operators.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION
from airflow.configuration import conf

# The major version is all we compare; "3.1.0rc1" and "3.0.0.dev0" count as 3 (no `packaging` needed).
AIRFLOW_V_3 = int(AIRFLOW_VERSION.split(".", 1)[0]) >= 3

# Each name is looked up in the task SDK only on Airflow 3: on Airflow 2 every failed ``airflow.sdk`` lookup
# would be paid by each DAG file's parse.
try:  # Airflow 3 (task SDK)
    if not AIRFLOW_V_3:
        raise ImportError
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSkipException,
    )
except ImportError:  # Airflow 2
    from airflow.exceptions import (  # type: ignore[assignment,no-redef]
        AirflowException,
        AirflowFailException,
        AirflowSkipException,
    )

try:
    if not AIRFLOW_V_3:
        raise ImportError
    from airflow.sdk.exceptions import AirflowSensorTimeout
except ImportError:
    from airflow.exceptions import AirflowSensorTimeout  # type: ignore[assignment,no-redef]

try:  # Airflow 3.3+: task_state_store keeps a started job's id across tries
    if not AIRFLOW_V_3:
        raise ImportError
    from airflow.sdk import ResumableJobMixin

    _AIRFLOW_RESUMES_JOBS = True
except ImportError:
    # Not common-compat's stand-in for older Airflow: that one starts a new job on every try.
    class ResumableJobMixin:  # type: ignore[no-redef]
        """Below Airflow 3.3 this base only takes ``durable``: :func:`resume_job` does the mixin's work."""

        external_id_key: str = "remote_job_id"

        def __init__(self, *, durable: bool = True, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.durable = durable

    _AIRFLOW_RESUMES_JOBS = False

try:
    if not AIRFLOW_V_3:
        raise ImportError
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:
    from airflow.exceptions import TaskDeferred  # type: ignore[assignment,no-redef]

if AIRFLOW_V_3:
    from airflow.sdk import Asset as AssetOrDataset
    from airflow.sdk import PokeReturnValue
else:
    from airflow.datasets import Dataset as AssetOrDataset  # type: ignore[assignment,no-redef]
    from airflow.sensors.base import PokeReturnValue  # type: ignore[assignment,no-redef]

if TYPE_CHECKING:
    try:
        from airflow.sdk import Context
    except ImportError:
        from airflow.utils.context import Context  # type: ignore[assignment,no-redef]
else:
    Context = dict


def mask_secret(secret: str) -> None:
    """Register ``secret`` with the secrets masker of the running Airflow so logs show ``***``."""
    try:
        from airflow.sdk.log import mask_secret as _mask
    except ImportError:
        try:
            from airflow.sdk.execution_time.secrets_masker import mask_secret as _mask
        except ImportError:
            from airflow.utils.log.secrets_masker import mask_secret as _mask  # type: ignore[no-redef]
    _mask(secret)


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, the value Airflow users expect ``deferrable`` to default to."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


async def get_async_client(hook: Any) -> Any:
    """
    Return an aiobotocore client context manager for ``hook`` without blocking the event loop.

    Amazon provider 9.0.0 (MWAA 2.10.3) only has the ``async_conn`` property, which loads credentials
    synchronously; newer ones have the ``get_async_conn()`` coroutine, which runs that work in a thread.
    For the old property we do the same thing ourselves.
    """
    if hasattr(hook, "get_async_conn"):
        return await hook.get_async_conn()
    return await asyncio.get_running_loop().run_in_executor(None, lambda: hook.async_conn)


def get_connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id`` (``airflow.sdk.BaseHook`` on Airflow 3, ``airflow.hooks.base`` on 2)."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    return BaseHook.get_connection(conn_id)


def sql_escape_word(hook: Any) -> Callable[[str], str] | None:
    """
    The ``escape_word`` of a common.sql ``DbApiHook``'s dialect (common.sql 1.20+: quotes reserved words the
    database's way), or None where common.sql has no dialects (1.19 on MWAA's 2.10.3 image).

    :param hook: a common.sql ``DbApiHook``.
    """
    try:
        escape = hook.dialect.escape_word
        escape("t")  # the dialect reads the database's reserved words on first use
    except Exception:  # no dialect (old common.sql), or one that cannot be built for this connection
        return None
    return escape if callable(escape) else None


# -- a started job's id across tries: Airflow 3.3's task_state_store, or Airflow Variables before it -----------------
#: The longest Airflow Variable key (the ``variable.key`` column, on Airflow 2 and 3 alike).
_VARIABLE_KEY_MAX = 250
#: Prefix of the Variables that hold a started job's id below Airflow 3.3.
JOB_RECORD_PREFIX = "sesexport_job"


def _variables() -> Any:
    """The Variable API a running task uses: the task SDK's (through the API server) on Airflow 3, the model on 2."""
    if AIRFLOW_V_3:
        from airflow.sdk import Variable
    else:
        from airflow.models import Variable  # type: ignore[assignment,no-redef]
    return Variable


class VariableTaskStore:
    """
    Below Airflow 3.3: ``task_state_store``'s ``get``/``set``/``delete`` for one task instance, kept in Airflow
    Variables, so a record written by a try survives its worker being killed and is read by the next try.

    Each key is one Variable whose name holds a digest of the DAG, run, task and map index
    (:meth:`variable_key`): no other task instance ever reads it.

    :param dag_id: the task instance's DAG.
    :param run_id: its DAG run.
    :param task_id: its task.
    :param map_index: its map index (-1 when not mapped).
    """

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
        self.scope = (dag_id, run_id, task_id, map_index)

    @classmethod
    def of(cls, context: Any) -> VariableTaskStore | None:
        """The store of the context's task instance, or None when the context names none (a bare ``execute``)."""
        ti = context.get("ti") if hasattr(context, "get") else None
        dag_id, run_id, task_id = (getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id"))
        if not (isinstance(dag_id, str) and isinstance(run_id, str) and isinstance(task_id, str)):
            return None
        map_index = getattr(ti, "map_index", -1)
        return cls(dag_id, run_id, task_id, map_index if isinstance(map_index, int) else -1)

    def variable_key(self, key: str) -> str:
        """
        The Variable holding ``key`` for this task instance: ``sesexport_job.<dag_id>.<task_id>.<map_index>.<digest>``.

        The names are for people reading the Variables list (cut to fit 250 characters, URL-safe: the task SDK puts
        the key in a URL path); the digest, a SHA-256 of the DAG, run, task, map index and ``key``, is what keeps
        every task instance's record apart.
        """
        dag_id, run_id, task_id, map_index = self.scope
        digest = hashlib.sha256(json.dumps([dag_id, run_id, task_id, map_index, key]).encode()).hexdigest()[:32]
        readable = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{JOB_RECORD_PREFIX}.{dag_id}.{task_id}.{map_index}")
        return f"{readable[: _VARIABLE_KEY_MAX - len(digest) - 1]}.{digest}"

    def get(self, key: str, default: Any = None) -> Any:
        value = _variables().get(self.variable_key(key), None)
        return default if value is None else json.loads(value)

    def set(self, key: str, value: Any) -> None:
        description = "SesCreateExportJobOperator: the export job this task instance started (removed when it ends)"
        _variables().set(self.variable_key(key), json.dumps(value), description)

    def delete(self, key: str) -> None:
        _variables().delete(self.variable_key(key))


def _max_tries(context: Any) -> Any:
    ti = context.get("ti") if hasattr(context, "get") else None
    return getattr(ti, "max_tries", None)


def job_record(job_id: str, context: Any) -> dict[str, Any]:
    """
    What a try records for the job it started: the JobId and the task instance's ``max_tries``.

    Airflow raises ``max_tries`` whenever the task instance is cleared (``clear_task_instances``, on 2.x and 3.x) and
    never between its retries, so the pair tells a retry's record from one a Clear left behind. Neither store is
    emptied on a Clear: a Variable outlives a try marked failed or timed out in the triggerer, and Airflow 3.3 keeps
    ``task_state_store`` after success unless ``[state_store] clear_on_success`` is set.

    :param job_id: the JobId CreateExportJob returned.
    :param context: the task context.
    """
    return {"job_id": job_id, "max_tries": _max_tries(context)}


def recorded_job_id(record: Any, context: Any) -> str | None:
    """
    The JobId of a :func:`job_record` written by this task instance since its last Clear, else None (a record from
    before a Clear, or in any other form, is never reused).

    :param record: what the store holds.
    :param context: the task context.
    """
    if not isinstance(record, dict) or not isinstance(record.get("job_id"), str):
        return None
    return record["job_id"] if record.get("max_tries") == _max_tries(context) else None


def resume_job(task: Any, context: Any) -> Any:
    """
    Run ``task``'s job the ``ResumableJobMixin`` way: reuse the job an earlier try of this task instance recorded
    (unless it failed or is gone), else submit one and record its id before waiting for it.

    Airflow 3.3+: Airflow's own ``execute_resumable`` with ``task_state_store``. Below 3.3: the same decisions over
    a :class:`VariableTaskStore`. Only the id this task instance recorded is ever reused.

    :param task: a ``ResumableJobMixin`` operator (``durable``, ``external_id_key``, ``submit_job``, ...).
    :param context: the task context.
    """
    if _AIRFLOW_RESUMES_JOBS:
        return task.execute_resumable(context)
    store = VariableTaskStore.of(context) if task.durable else None
    if store is None:
        if task.durable:
            task.log.warning("No task instance in the context: a retry of this try would start a new job.")
        external_id = task.submit_job(context)
        task.poll_until_complete(external_id, context)
        return task.get_job_result(external_id, context)
    recorded = store.get(task.external_id_key)
    if recorded:
        status = task.get_job_status(recorded, context)
        job_id = recorded_job_id(recorded, context)
        if task.is_job_active(status):
            task.log.info("Reconnecting to job %s (%s), which an earlier try of this task started.", job_id, status)
            return task.poll_until_complete(recorded, context)
        if task.is_job_succeeded(status):
            task.log.info("Job %s, which an earlier try of this task started, already succeeded.", job_id)
            return task.get_job_result(recorded, context)
        task.log.warning("Job %s, which an earlier try started, is %s: starting a new one.", job_id or recorded, status)
    external_id = task.submit_job(context)
    store.set(task.external_id_key, external_id)
    task.poll_until_complete(external_id, context)
    return task.get_job_result(external_id, context)


def _retried(context: Any, exc: BaseException) -> bool:
    """Whether Airflow gives the task instance another try after this one raised ``exc``."""
    if isinstance(exc, (AirflowFailException, AirflowSensorTimeout, AirflowSkipException)):
        return False
    ti = context.get("ti") if hasattr(context, "get") else None
    try_number, max_tries = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
    return isinstance(try_number, int) and isinstance(max_tries, int) and try_number <= max_tries


@contextmanager
def job_record_until_the_task_ends(task: Any, context: Any) -> Iterator[None]:
    """
    Below Airflow 3.3: remove the job id :func:`resume_job` recorded once this try ends the task instance (it
    succeeds, is skipped, or fails with no retry left). A deferral or a failure with a retry to come keeps it, and a
    killed worker runs nothing: the next try reads it. Airflow 3.3+ keeps its ``task_state_store`` itself.

    :param task: the ``ResumableJobMixin`` operator.
    :param context: the task context.
    """
    store = None if _AIRFLOW_RESUMES_JOBS or not task.durable else VariableTaskStore.of(context)
    try:
        yield
    except TaskDeferred:
        raise
    except BaseException as exc:
        if store is not None and not _retried(context, exc):
            _forget(task, store)
        raise
    if store is not None:
        _forget(task, store)


def _forget(task: Any, store: VariableTaskStore) -> None:
    try:
        store.delete(task.external_id_key)
    except Exception as exc:  # the task's outcome does not depend on the clean-up
        task.log.warning("Could not remove the Variable %s: %s", store.variable_key(task.external_id_key), exc)


__all__ = [
    "AIRFLOW_V_3",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AssetOrDataset",
    "Context",
    "PokeReturnValue",
    "ResumableJobMixin",
    "TaskDeferred",
    "VariableTaskStore",
    "default_deferrable",
    "get_async_client",
    "get_connection",
    "job_record",
    "job_record_until_the_task_ends",
    "mask_secret",
    "recorded_job_id",
    "resume_job",
    "sql_escape_word",
]
