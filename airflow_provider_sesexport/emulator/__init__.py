"""
Local SES v2 export-job emulator (CreateExportJob, GetExportJob, ListExportJobs, CancelExportJob).

Neither moto nor LocalStack implements export jobs; this speaks the ``sesv2`` rest-json wire protocol
so unmodified boto3 / aiobotocore clients work with ``endpoint_url=``. aiohttp is imported only when
a server starts.

Entry points: :class:`SesExportEmulator` (Python), ``ses-export-emulator`` /
``python -m airflow_provider_sesexport.emulator`` (CLI), and the pytest fixtures
``ses_export_emulator``, ``ses_export_emulator_session`` and ``ses_export_emulator_factory``.
"""

from __future__ import annotations

from airflow_provider_sesexport.emulator.config import EmulatorOptions, NonLoopbackRefused
from airflow_provider_sesexport.emulator.control import SesExportEmulator
from airflow_provider_sesexport.emulator.faults import FaultConfig
from airflow_provider_sesexport.emulator.jobs import Rule

__all__ = ["EmulatorOptions", "FaultConfig", "NonLoopbackRefused", "Rule", "SesExportEmulator"]
