"""The export-file layout facts the reader (:mod:`airflow_provider_sesexport.records`) relies on."""

from __future__ import annotations

__all__ = ["MESSAGE_INSIGHTS_COLUMNS"]

#: The columns of a Message Insights export, in the order real SES writes them.
MESSAGE_INSIGHTS_COLUMNS = (
    "messageid",
    "sendtimestamp",
    "isp",
    "fromaddress",
    "destination",
    "subject",
    "last_delivery_event",
    "last_engagement_event",
    "last_delivery_event_timestamp",
    "last_engagement_event_timestamp",
    "bounce_sub_type",
    "diagnostic_code",
)
