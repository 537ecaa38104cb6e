"""
The only module that knows how Airflow 2.10+ and Airflow 3.x (and Amazon provider 9.0.0 vs newer) differ.

Every other module of the package imports version-dependent names from here; nothing else lives here
(DAG-authoring names such as ``DAG`` and ``task`` belong to the user's DAG file, not to us). Each name
is tried at its Airflow 3 location first and falls back to its Airflow 2 location, so no deprecated
path is used where the new one exists. Only modules a DAG file's operators load anyway are imported
at module level: this module is on the import path of every DAG using our operators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION

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
        """Below Airflow 3.3 nothing keeps state across tries: this base only takes ``durable``."""

        def __init__(self, *, durable: bool = True, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.durable = durable

    _AIRFLOW_RESUMES_JOBS = False

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
    from airflow.configuration import conf

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
    import asyncio

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


def task_state_store(context: Any) -> Any | None:
    """
    Airflow's resumable-job store (``context["task_state_store"]``, Airflow 3.3+), or None where it does not exist.

    It keeps small JSON values per task instance across tries (XComs are cleared when a try starts), and
    where it exists :class:`ResumableJobMixin` is Airflow's, which resumes a job through it.
    """
    getter = getattr(context, "get", None)
    return getter("task_state_store") if getter is not None and _AIRFLOW_RESUMES_JOBS else None


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
    "default_deferrable",
    "get_async_client",
    "get_connection",
    "mask_secret",
    "sql_escape_word",
    "task_state_store",
]
