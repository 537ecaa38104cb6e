"""
What the package marks as its public API (issue 23): internal helper modules say so with an empty ``__all__``,
the utils modules users import from list their names, and every listed name exists.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import airflow_provider_sesexport as package

#: Modules whose names are internal helpers of the hooks, operators, sensors and triggers.
INTERNAL = [
    "airflow_provider_sesexport.triggers.poller",
    "airflow_provider_sesexport.utils.aws_errors",
    "airflow_provider_sesexport.utils.chunks",
    "airflow_provider_sesexport.utils.deliverability",
    "airflow_provider_sesexport.utils.export_job",
    "airflow_provider_sesexport.utils.export_slots",
    "airflow_provider_sesexport.utils.model_validation",
]
#: Names the README and the example DAGs import from utils.
DOCUMENTED = {
    "airflow_provider_sesexport.utils.redaction": "redact_url",
    "airflow_provider_sesexport.utils.export_layout": "MESSAGE_INSIGHTS_COLUMNS",
    "airflow_provider_sesexport.utils.job_summary": "summarize_export_job",
    "airflow_provider_sesexport.utils.job_states": "TERMINAL_STATES",
}


def _public_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return [name for name in names if not any(part.startswith("_") for part in name.split("."))]


@pytest.mark.parametrize("name", INTERNAL)
def test_internal_modules_export_nothing(name: str) -> None:
    assert importlib.import_module(name).__all__ == []


@pytest.mark.parametrize(("name", "documented"), DOCUMENTED.items())
def test_documented_utils_names_are_listed(name: str, documented: str) -> None:
    assert documented in importlib.import_module(name).__all__


def test_every_utils_module_marks_its_public_names() -> None:
    utils = [name for name in _public_modules() if ".utils." in name]
    assert "airflow_provider_sesexport.utils.redaction" in utils  # the walk sees the real modules
    assert [name for name in utils if not hasattr(importlib.import_module(name), "__all__")] == []


@pytest.mark.parametrize("name", _public_modules())
def test_every_listed_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    assert [n for n in getattr(module, "__all__", []) if not hasattr(module, n)] == []
