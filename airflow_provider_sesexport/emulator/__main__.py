"""``python -m airflow_provider_sesexport.emulator``: same as ``ses-export-emulator``."""

from __future__ import annotations

import sys

from airflow_provider_sesexport.emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
