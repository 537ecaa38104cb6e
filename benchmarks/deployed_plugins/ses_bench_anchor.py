"""The benchmark's anchor trigger as a module the triggerer processes import (linked into the plugins folder).

:func:`benchmarks.trigger_scale.make_anchor_class` defines the class inside a function; here it gets this module's
name so its serialized classpath (``ses_bench_anchor.AnchorExportJobTrigger``) imports in every Airflow process.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]  # the link resolves into benchmarks/deployed_plugins/
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from benchmarks.trigger_scale import make_anchor_class  # noqa: E402

AnchorExportJobTrigger = make_anchor_class()
AnchorExportJobTrigger.__module__ = __name__
AnchorExportJobTrigger.__qualname__ = "AnchorExportJobTrigger"
