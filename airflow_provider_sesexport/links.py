"""Extra links in the Airflow UI."""

from __future__ import annotations

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class S3ObjectLink(BaseAwsLink):
    """
    Link from a task to the S3 object it wrote, in the AWS console.

    The task stores ``bucket_name`` and ``key`` (escaped) with ``S3ObjectLink.persist``.
    """

    name = "S3 object"
    key = "sesexport_s3_object"
    format_str: str = BASE_AWS_CONSOLE_LINK + "/s3/object/{bucket_name}?region={region_name}&prefix={key}"
