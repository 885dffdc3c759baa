"""Reachability of the configured object store, for /readyz."""
from __future__ import annotations

import os
from typing import Any


def storage_reachable(config: dict[str, Any]) -> tuple[bool, str]:
    """Whether the configured storage answers, and why not when it does not."""
    if config["STORAGE_BACKEND"] == "local":
        path = config["STORAGE_LOCAL_PATH"]
        os.makedirs(path, exist_ok=True)
        return (os.access(path, os.W_OK), "" if os.access(path, os.W_OK) else f"{path} not writable")
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=config["S3_ENDPOINT_URL"] or None, region_name=config["S3_REGION"],
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
    )
    try:
        client.head_bucket(Bucket=config["S3_BUCKET"])
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason is reported
        return False, f"{exc.__class__.__name__}: {exc}"
    return True, ""
