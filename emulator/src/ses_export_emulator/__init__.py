"""
Local SES v2 export-job emulator (CreateExportJob, GetExportJob, ListExportJobs, CancelExportJob).

Neither moto nor LocalStack implements export jobs; this speaks the ``sesv2`` rest-json wire protocol
so unmodified boto3 / aiobotocore clients work with ``endpoint_url=``. aiohttp is imported only when
a server starts.

Entry points: :class:`SesExportEmulator` (Python), ``ses-export-emulator`` /
``python -m ses_export_emulator`` (CLI), and the pytest fixtures
``ses_export_emulator``, ``ses_export_emulator_session`` and ``ses_export_emulator_factory``.
"""

from __future__ import annotations

from ses_export_emulator.config import EmulatorOptions, NonLoopbackRefused
from ses_export_emulator.control import SesExportEmulator
from ses_export_emulator.faults import FaultConfig
from ses_export_emulator.jobs import Rule

__all__ = ["EmulatorOptions", "FaultConfig", "NonLoopbackRefused", "Rule", "SesExportEmulator"]
