"""
Create an S3 object only if its key is free: ``If-None-Match: *`` on the requests that create it.

boto3's managed transfer (s3transfer) refuses ``IfNoneMatch`` in ``ExtraArgs`` (its list of allowed upload
arguments has no conditional-write entries, up to s3transfer 0.19 at least), so the parameter is added by a
botocore event handler on the client, to ``PutObject`` (a file under one part) and ``CompleteMultipartUpload``
(a multipart upload) of that one key. botocore's S3 model has the parameter from 1.35 (the oldest MWAA image,
2.10.3, has botocore 1.35.36). S3 answers 412 ``PreconditionFailed`` when the key exists by then; s3transfer
aborts the multipart upload on that error, and it becomes
:class:`~airflow_provider_sesexport.exceptions.SesExportDestinationExistsError`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from airflow_provider_sesexport.exceptions import SesExportDestinationExistsError
from airflow_provider_sesexport.transfers._destination import s3_uri

#: The operations that create an object from an upload.
CREATING_OPERATIONS = ("PutObject", "CompleteMultipartUpload")


@contextmanager
def create_only(client: Any, bucket: str, key: str) -> Iterator[None]:
    """
    Within the block, the client creates ``s3://bucket/key`` only if no object has that key.

    The uploads must run through the classic transfer client (botocore's events); the CRT one bypasses them.

    :param client: a boto3 S3 client (the destination hook's).
    :param bucket: the destination bucket.
    :param key: the destination key.
    :raises SesExportDestinationExistsError: S3 refused the write because the key exists (another writer won).
    """

    def add_condition(params: dict[str, Any], **_: Any) -> None:
        if params.get("Bucket") == bucket and params.get("Key") == key:
            params["IfNoneMatch"] = "*"

    events = client.meta.events
    handler_id = f"sesexport-create-only-{uuid.uuid4().hex}"
    # provide-client-params comes before parameter validation (and before botocore's Stubber looks at them). A
    # unique id names one registration, whatever the event: one per operation.
    names = {f"provide-client-params.s3.{operation}": f"{handler_id}-{operation}" for operation in CREATING_OPERATIONS}
    for name, unique_id in names.items():
        events.register(name, add_condition, unique_id=unique_id)
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
            raise SesExportDestinationExistsError(s3_uri(bucket, key), during_copy=True) from None
        raise
    finally:
        for name, unique_id in names.items():
            events.unregister(name, unique_id=unique_id)
