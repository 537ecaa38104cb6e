"""
The only module that knows how Airflow 2.10+ and Airflow 3.x (and Amazon provider 9.0.0 vs newer) differ.

Every other module imports version-dependent names from here. Each name is tried at its Airflow 3
location first and falls back to its Airflow 2 location, so no deprecated path is used where the new
one exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

AIRFLOW_V_3 = Version(Version(AIRFLOW_VERSION).base_version) >= Version("3.0.0")

try:  # Airflow 3 (task SDK)
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
    from airflow.sdk.exceptions import AirflowSensorTimeout
except ImportError:
    from airflow.exceptions import AirflowSensorTimeout  # type: ignore[assignment,no-redef]

try:
    from airflow.sdk import PokeReturnValue
except ImportError:
    from airflow.sensors.base import PokeReturnValue  # type: ignore[assignment,no-redef]

try:
    from airflow.sdk import BaseOperatorLink
except ImportError:
    from airflow.models.baseoperatorlink import BaseOperatorLink  # type: ignore[assignment,no-redef]

try:
    from airflow.sdk import Asset as AssetOrDataset
except ImportError:
    from airflow.datasets import Dataset as AssetOrDataset  # type: ignore[assignment,no-redef]

# DAG-authoring names, for the example DAGs (user code would import them from its own Airflow).
try:
    from airflow.sdk import DAG, Param, task
except ImportError:
    from airflow import DAG  # type: ignore[assignment,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.models.param import Param  # type: ignore[assignment,no-redef]

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


def daily_data_interval_schedule() -> Any:
    """
    A daily schedule whose runs cover the previous day (``data_interval_start`` < ``data_interval_end``).

    Airflow 3 maps ``"@daily"`` and timedeltas to trigger timetables, whose runs have an empty data
    interval; ``CronDataIntervalTimetable`` behaves the same on Airflow 2 and 3.
    """
    from airflow.timetables.interval import CronDataIntervalTimetable

    return CronDataIntervalTimetable("0 0 * * *", timezone="UTC")


def task_state_store(context: Any) -> Any | None:
    """
    Airflow's resumable-job store (``context["task_state_store"]``, Airflow 3.3+), or None where it does not exist.

    It keeps small JSON values per task instance across tries (XComs are cleared when a try starts).
    """
    getter = getattr(context, "get", None)
    return getter("task_state_store") if getter is not None else None


__all__ = [
    "AIRFLOW_V_3",
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AssetOrDataset",
    "BaseOperatorLink",
    "Context",
    "Param",
    "PokeReturnValue",
    "daily_data_interval_schedule",
    "default_deferrable",
    "get_async_client",
    "mask_secret",
    "task",
    "task_state_store",
]
