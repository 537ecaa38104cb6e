"""``create_only``: the requests creating the destination carry ``IfNoneMatch='*'``, a 412 names the key (Stubber)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from airflow_provider_sesexport._compat import AirflowFailException
from airflow_provider_sesexport.exceptions import SesExportDestinationExistsError
from airflow_provider_sesexport.transfers._conditional_write import create_only

BUCKET, KEY = "exports", "ses/2026-11-01/run-8f3a.csv"
COMPLETE = {"Bucket": BUCKET, "Key": KEY, "UploadId": "up-1", "MultipartUpload": {"Parts": []}}


@pytest.fixture
def s3() -> Any:
    return boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")


def test_put_and_complete_of_the_key_are_conditional(s3: Any) -> None:
    with create_only(s3, BUCKET, KEY), Stubber(s3) as stub:
        stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": KEY, "Body": b"x", "IfNoneMatch": "*"})
        stub.add_response("complete_multipart_upload", {}, {**COMPLETE, "IfNoneMatch": "*"})
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"x")
        s3.complete_multipart_upload(**COMPLETE)
        stub.assert_no_pending_responses()


def test_other_keys_and_operations_are_left_alone(s3: Any) -> None:
    with create_only(s3, BUCKET, KEY), Stubber(s3) as stub:
        stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": KEY + ".other", "Body": b"x"})
        stub.add_response("create_multipart_upload", {"UploadId": "up-1"}, {"Bucket": BUCKET, "Key": KEY})
        s3.put_object(Bucket=BUCKET, Key=KEY + ".other", Body=b"x")
        s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)


def test_the_condition_ends_with_the_block(s3: Any) -> None:
    with create_only(s3, BUCKET, KEY):
        pass
    with Stubber(s3) as stub:
        stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": KEY, "Body": b"x"})
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"x")


@pytest.mark.parametrize("operation", ["put_object", "complete_multipart_upload"])
def test_precondition_failed_names_the_key_and_spends_no_retry(s3: Any, operation: str) -> None:
    with Stubber(s3) as stub:
        stub.add_client_error(operation, "PreconditionFailed", "At least one of the pre-conditions failed", 412)
        call = {"put_object": {"Bucket": BUCKET, "Key": KEY, "Body": b"x"}, "complete_multipart_upload": COMPLETE}
        with pytest.raises(SesExportDestinationExistsError) as err, create_only(s3, BUCKET, KEY):
            getattr(s3, operation)(**call[operation])
    message = str(err.value)
    assert f"s3://{BUCKET}/{KEY} was created by another writer while this copy ran" in message
    assert "412 PreconditionFailed" in message and "set replace=True" in message
    assert isinstance(err.value, AirflowFailException)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_other_errors_pass_through(s3: Any) -> None:
    with Stubber(s3) as stub:
        stub.add_client_error("put_object", "AccessDenied", "Access Denied", 403)
        with pytest.raises(ClientError, match="AccessDenied"), create_only(s3, BUCKET, KEY):
            s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"x")


def test_exists_error_survives_pickling() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(SesExportDestinationExistsError("s3://b/k", during_copy=True)))
    assert err.uri == "s3://b/k" and err.during_copy
    assert str(err) == str(SesExportDestinationExistsError("s3://b/k", during_copy=True))
    assert str(SesExportDestinationExistsError("s3://b/k")).startswith("s3://b/k already exists: set replace=True")
