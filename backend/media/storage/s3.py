"""S3 (or any S3-compatible store) through boto3: presigned PUTs, multipart, signed GETs."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from backend.media.storage.base import (
    ObjectInfo,
    PresignedRequest,
    StorageError,
    StoredPart,
    UploadNotFound,
    check_key,
)


class S3Storage:
    """One bucket; the client is made by the caller (timeouts, endpoint, credentials)."""

    name = "s3"

    def __init__(self, client: Any, *, bucket: str):
        self.client = client
        self.bucket = bucket

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchUpload", "NoSuchUploadId"}:
                raise UploadNotFound(params.get("UploadId", "")) from exc
            raise StorageError(f"S3 {operation} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {operation} failed: {exc}") from exc

    def _presign(self, operation: str, expires_s: int, **params: Any) -> str:
        return self.client.generate_presigned_url(
            operation, Params={"Bucket": self.bucket, **params}, ExpiresIn=expires_s)

    def presign_put(self, key: str, *, content_type: str, size: int, expires_s: int) -> PresignedRequest:
        url = self._presign("put_object", expires_s, Key=check_key(key), ContentType=content_type)
        return PresignedRequest(url=url, headers={"Content-Type": content_type})

    def create_multipart(self, key: str, *, content_type: str) -> str:
        return self._call("create_multipart_upload", Key=check_key(key), ContentType=content_type)["UploadId"]

    def presign_part(self, key: str, *, upload_id: str, part_number: int, expires_s: int) -> PresignedRequest:
        url = self._presign("upload_part", expires_s, Key=check_key(key), UploadId=upload_id,
                            PartNumber=part_number)
        return PresignedRequest(url=url)

    def list_parts(self, key: str, *, upload_id: str) -> list[StoredPart]:
        parts: list[StoredPart] = []
        marker = 0
        while True:
            page = self._call("list_parts", Key=check_key(key), UploadId=upload_id, PartNumberMarker=marker)
            parts += [StoredPart(number=p["PartNumber"], size=p["Size"], etag=p["ETag"].strip('"'))
                      for p in page.get("Parts", [])]
            if not page.get("IsTruncated"):
                return parts
            marker = page["NextPartNumberMarker"]

    def complete_multipart(self, key: str, *, upload_id: str, parts: list[StoredPart]) -> None:
        self._call("complete_multipart_upload", Key=check_key(key), UploadId=upload_id, MultipartUpload={
            "Parts": [{"PartNumber": p.number, "ETag": f'"{p.etag}"'} for p in sorted(parts, key=lambda p: p.number)]})

    def abort_multipart(self, key: str, *, upload_id: str) -> None:
        try:
            self._call("abort_multipart_upload", Key=check_key(key), UploadId=upload_id)
        except UploadNotFound:
            return

    def presign_get(self, key: str, *, expires_s: int, content_type: str | None = None,
                    filename: str | None = None) -> str:
        params: dict[str, Any] = {"Key": check_key(key)}
        if content_type:
            params["ResponseContentType"] = content_type
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self._presign("get_object", expires_s, **params)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            found = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise StorageError(f"S3 head_object failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 head_object failed: {exc}") from exc
        return ObjectInfo(key=key, size=found["ContentLength"], content_type=found.get("ContentType"))

    def open(self, key: str) -> BinaryIO:
        return self._call("get_object", Key=check_key(key))["Body"]

    def put(self, key: str, data: BinaryIO, *, content_type: str) -> None:
        try:
            self.client.upload_fileobj(data, self.bucket, check_key(key), ExtraArgs={"ContentType": content_type})
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"S3 upload failed: {exc}") from exc

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        batch: list[dict[str, str]] = []
        for info in list(self.iter_keys(prefix)):
            batch.append({"Key": info.key})
            if len(batch) == 1000:
                self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})
                deleted, batch = deleted + len(batch), []
        if batch:
            self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})
            deleted += len(batch)
        return deleted

    def iter_keys(self, prefix: str = "") -> Iterator[ObjectInfo]:
        token = None
        while True:
            params: dict[str, Any] = {"Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            page = self._call("list_objects_v2", **params)
            for item in page.get("Contents", []):
                yield ObjectInfo(key=item["Key"], size=item["Size"])
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]
