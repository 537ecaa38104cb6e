"""``python -m ses_export_emulator``: same as ``ses-export-emulator``."""

from __future__ import annotations

import sys

from ses_export_emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
