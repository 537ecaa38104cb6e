from __future__ import annotations

import importlib
import json
import pkgutil
from importlib.metadata import distribution
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_sesexport import __version__, get_provider_info

DIST = "airflow-provider-sesexport"


def test_package_name_is_the_normalised_distribution_name() -> None:
    info = get_provider_info()
    assert info["package-name"] == distribution(DIST).metadata["Name"].lower().replace("_", "-")
    assert info["versions"] == [__version__]


def test_entry_point_is_registered() -> None:
    entry_points = [ep for ep in distribution(DIST).entry_points if ep.group == "apache_airflow_provider"]
    assert [ep.value for ep in entry_points] == ["airflow_provider_sesexport:get_provider_info"]
    assert entry_points[0].load()() == get_provider_info()


def test_matches_airflows_provider_info_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_the_schema_check_fails_on_a_violation() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    broken = get_provider_info()
    broken["transfers"] = [{"python-module": "airflow_provider_sesexport.transfers.ses_export_to_sql"}]
    with pytest.raises(jsonschema.ValidationError, match="source-integration-name"):
        jsonschema.validate(broken, schema)


def _public_operator_modules() -> set[str]:
    """Every public module of the package that defines an operator or sensor class of its own."""
    found = set()
    for package in ("operators", "sensors", "transfers"):
        pkg = importlib.import_module(f"airflow_provider_sesexport.{package}")
        for module_info in pkgutil.iter_modules(pkg.__path__):
            if module_info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{pkg.__name__}.{module_info.name}")
            if any(
                isinstance(obj, type)
                and obj.__name__.endswith(("Operator", "Sensor"))
                and obj.__module__ == module.__name__
                for obj in vars(module).values()
            ):
                found.add(module.__name__)
    return found


def test_every_operator_sensor_and_transfer_module_is_listed() -> None:
    found = _public_operator_modules()
    assert "airflow_provider_sesexport.transfers.ses_export_to_sql" in found  # the walk sees the real modules
    assert found <= set(_modules())


def test_every_transfer_target_is_an_integration_airflow_knows() -> None:
    from airflow.providers.amazon.get_provider_info import get_provider_info as amazon_info
    from airflow.providers.common.sql.get_provider_info import get_provider_info as sql_info

    known = {
        i["integration-name"] for info in (get_provider_info(), amazon_info(), sql_info()) for i in info["integrations"]
    }
    for transfer in get_provider_info()["transfers"]:
        assert {transfer["source-integration-name"], transfer["target-integration-name"]} <= known


def test_declares_no_connection_type() -> None:
    # The Amazon provider's `aws` connection is reused; declaring one would replace it.
    assert "connection-types" not in get_provider_info()


def _modules() -> list[str]:
    info = get_provider_info()
    modules = [
        m
        for kind in ("hooks", "sensors", "operators", "triggers")
        for e in info.get(kind, [])
        for m in e["python-modules"]
    ]
    modules += [t["python-module"] for t in info.get("transfers", [])]
    modules += [link.rsplit(".", 1)[0] for link in info.get("extra-links", [])]
    return modules


@pytest.mark.parametrize("module", _modules())
def test_every_listed_module_imports(module: str) -> None:
    importlib.import_module(module)


def test_providers_manager_lists_it() -> None:
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers
    assert DIST in providers
    assert providers[DIST].version == __version__
