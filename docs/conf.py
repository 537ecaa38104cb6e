"""Sphinx configuration: built by ``make docs`` (warnings are errors, nothing fetched from the network)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# autodoc imports the package, which imports Airflow: keep Airflow's home out of the user's (and quiet).
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / "docs" / "_build" / "airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

project = "airflow-provider-sesexport"
author = "airflow-provider-sesexport contributors"
copyright = "2026, airflow-provider-sesexport contributors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_screenshots", "requirements.txt"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
# Airflow's base-class docstrings ("Override when deriving this class") say nothing about these classes.
autodoc_inherit_docstrings = False
autosummary_generate = False
nitpicky = False

html_theme = "furo"
html_title = "airflow-provider-sesexport"
html_static_path: list[str] = []


def _literal_role(name, rawtext, text, lineno, inliner, options=None, content=None):  # type: ignore[no-untyped-def]
    """A cross-reference into another project's docs, shown as code (``~`` keeps the last part, as Sphinx does)."""
    from docutils import nodes

    shown = text[1:].rsplit(".", 1)[-1] if text.startswith("~") else text
    return [nodes.literal(rawtext, shown)], []


def setup(app):  # type: ignore[no-untyped-def]
    """
    ``:external+boto3:py:meth:`...``` (the Amazon provider's docstring style) needs intersphinx, which downloads
    boto3's inventory: without network at build time, such references render as code.
    """
    from sphinx.domains import Domain

    class Boto3References(Domain):
        name = "external+boto3"
        label = "boto3 references without intersphinx"
        roles = {"py:class": _literal_role, "py:meth": _literal_role}

    app.add_domain(Boto3References)
