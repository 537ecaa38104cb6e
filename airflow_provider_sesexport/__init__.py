"""Apache Airflow provider for Amazon SES v2 export jobs."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow's ProvidersManager reads through the entry point."""
    return {
        "package-name": "airflow-provider-sesexport",
        "name": "Amazon SES export jobs",
        "description": "Amazon SES v2 export jobs (Virtual Deliverability Manager metrics and "
        "Message Insights exports): start, wait for, read and copy export jobs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Amazon SES export jobs",
                "external-doc-url": "https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_CreateExportJob.html",
                "tags": ["aws"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Amazon SES export jobs",
                "python-modules": ["airflow_provider_sesexport.hooks.ses_export"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Amazon SES export jobs",
                "python-modules": ["airflow_provider_sesexport.sensors.ses_export"],
            }
        ],
        "operators": [
            {
                "integration-name": "Amazon SES export jobs",
                "python-modules": [
                    "airflow_provider_sesexport.operators.ses_export",
                    "airflow_provider_sesexport.operators.ses_deliverability",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Amazon SES export jobs",
                "python-modules": [
                    "airflow_provider_sesexport.triggers.ses_export",
                    "airflow_provider_sesexport.triggers.export_slot",
                ],
            }
        ],
        "extra-links": ["airflow_provider_sesexport.links.S3ObjectLink"],
        "transfers": [
            {
                "source-integration-name": "Amazon SES export jobs",
                "target-integration-name": "Amazon Simple Storage Service (S3)",
                "python-module": "airflow_provider_sesexport.transfers.ses_export_to_s3",
            },
            {
                "source-integration-name": "Amazon SES export jobs",
                "target-integration-name": "Common SQL",
                "python-module": "airflow_provider_sesexport.transfers.ses_export_to_sql",
            },
        ],
    }
