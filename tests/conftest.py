"""
Test set-up shared by every suite.

The environment is fixed here, before anything imports ``airflow``: a temporary AIRFLOW_HOME with an
SQLite metadata DB, no example DAGs, this repository's ``example_dags/`` as the DAGs folder, and
dummy AWS credentials so nothing can reach a real AWS account.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="sesexport-airflow-home-"))

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
os.environ["AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL"] = "0"
for _name, _value in {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ[_name] = _value
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SESV2"):
    os.environ.pop(_name, None)

import pytest  # noqa: E402

# tests/deployment drive a running deployment: collected only under `python -m deployment test` (make deploy-test).
collect_ignore = [] if os.environ.get("SESEXPORT_DEPLOYMENT_STATE") else ["deployment"]


@pytest.fixture(autouse=True)
def _fresh_secrets_masker() -> Iterator[None]:
    """Each test starts with an empty secrets masker, as a task process does (see ``forget_masked_values``)."""
    yield
    from tests.airflow_names import forget_masked_values

    forget_masked_values()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)


# -- paths Airflow 3.0's dag.test() cannot run: the one place they are deselected ------------------------
#: marker -> (what 3.0.x's ``dag.test()`` gets wrong, the test that proves the path on 3.0.x instead).
#: ``dag.test()`` runs tasks through an in-process supervisor; a deployment passes the same messages
#: across a process boundary, where they are parsed, so these paths work there (``make deploy-test``).
DAG_TEST_GAPS_ON_AIRFLOW_3_0: dict[str, tuple[str, str]] = {
    "reschedule_in_dag_test": (
        "Airflow 3.0's in-process supervisor hands BaseSensorOperator.execute the first reschedule date as an "
        "unparsed string (TypeError: datetime - str) once a reschedule-mode sensor was rescheduled",
        "make deploy-test IMAGE=3.0.6 (tests/deployment: the example gate DAG's reschedule sensor through "
        "real reschedules, more than one TaskReschedule row)",
    ),
}


def _airflow_3_0() -> bool:
    from importlib.metadata import version

    return version("apache-airflow").startswith("3.0.")


def pytest_configure(config: pytest.Config) -> None:
    for marker, (gap, proof) in DAG_TEST_GAPS_ON_AIRFLOW_3_0.items():
        config.addinivalue_line("markers", f"{marker}: deselected on Airflow 3.0.x ({gap}); proven by {proof}")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """On Airflow 3.0.x, deselect the tests marked with a :data:`DAG_TEST_GAPS_ON_AIRFLOW_3_0` marker."""
    if not _airflow_3_0():
        return
    gaps: dict[str, list[str]] = {}
    kept = []
    for item in items:
        marker = next((m for m in DAG_TEST_GAPS_ON_AIRFLOW_3_0 if item.get_closest_marker(m)), None)
        if marker is None:
            kept.append(item)
        else:
            gaps.setdefault(marker, []).append(item.nodeid)
    if gaps:
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
        config.stash[_GAPS_KEY] = gaps


_GAPS_KEY = pytest.StashKey[dict[str, list[str]]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Name every test deselected on Airflow 3.0.x, why, and what proves that path there instead."""
    gaps = config.stash.get(_GAPS_KEY, {})
    if not gaps:
        return
    terminalreporter.section("deselected on Airflow 3.0.x: dag.test() cannot run these paths")
    for marker, nodeids in gaps.items():
        gap, proof = DAG_TEST_GAPS_ON_AIRFLOW_3_0[marker]
        terminalreporter.write_line(f"{marker} ({len(nodeids)}): {gap}; proven by {proof}:")
        for nodeid in nodeids:
            terminalreporter.write_line(f"  {nodeid}")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the metadata DB once per session, in-process (seconds faster than ``airflow db migrate``)."""
    from airflow.utils import db

    from tests.airflow_names import configure_dag_test_logging, reuse_dag_test_execution_api

    db.resetdb()
    configure_dag_test_logging()
    reuse_dag_test_execution_api()
    return _HOME


def register_dag(dag: Any) -> None:
    """Airflow 3 runs ``dag.test()`` from the serialized DAG in the metadata DB: write an in-memory DAG there."""
    from tests.airflow_names import AIRFLOW_V_3, dag_bag, sync_bag_to_db

    if not AIRFLOW_V_3:
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    bag = dag_bag(dag_folder=os.devnull, collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


@pytest.fixture
def run_dag(airflow_db: Path) -> Callable[..., Any]:
    """
    Run a DAG for real with ``dag.test()`` on the session's SQLite metadata DB and return the DagRun.

    ``dag.test()`` does not raise when a task fails: assert on ``dr.state`` and task states.
    """

    def _run(dag: Any, **kwargs: Any) -> Any:
        register_dag(dag)
        return dag.test(**kwargs)

    return _run


@pytest.fixture
def load_example_dag(airflow_db: Path) -> Callable[[str], Any]:
    """Import a DAG from ``example_dags/`` the way Airflow's DAG processor does."""

    def _load(dag_id: str) -> Any:
        from tests.airflow_names import dag_bag

        bag = dag_bag(dag_folder=str(REPO / "example_dags"))
        assert not bag.import_errors, bag.import_errors
        return bag.get_dag(dag_id)

    return _load


def task_states(dr: Any) -> dict[str, str | None]:
    """``{task_id: state}`` for every task instance of a DagRun (mapped ones as ``task_id[i]``)."""
    out: dict[str, str | None] = {}
    for ti in dr.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        out[key] = None if ti.state is None else str(ti.state.value if hasattr(ti.state, "value") else ti.state)
    return out


@pytest.fixture
def states() -> Callable[[Any], dict[str, str | None]]:
    return task_states
