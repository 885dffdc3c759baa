"""``/storage/<key>``: the local store's signed endpoint (what S3 is for the s3 backend).

PUT stores a presigned upload or part; GET serves a signed read. Nothing happens without
a valid, unexpired signature over the exact operation. Reads are never rendered as a
page: ``nosniff``, a sandboxing CSP, and ``attachment`` unless the signed URL names an
image or video type the server produced or checked.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request, send_file
from werkzeug.exceptions import Forbidden, NotFound, RequestEntityTooLarge

from backend.common.errors import error_response
from backend.media.storage import get_storage
from backend.media.storage.base import UploadNotFound, check_key
from backend.media.storage.local import LocalStorage, TooLarge

bp = Blueprint("local_storage", __name__)
INLINE_TYPES = ("image/webp", "image/jpeg", "image/png", "image/gif", "video/mp4", "video/mp2t",
                "application/vnd.apple.mpegurl", "text/vtt")


def _store() -> LocalStorage:
    store = get_storage()
    if not isinstance(store, LocalStorage):
        raise NotFound()
    return store


def _signed(key: str) -> tuple[LocalStorage, dict[str, str]]:
    store = _store()
    try:
        check_key(key)
    except ValueError:
        raise NotFound() from None
    params = {k: v for k, v in request.args.items() if k != "signature"}
    params["key"] = key
    if not store.verify(params, request.args.get("signature", "")):
        raise Forbidden("The signature is invalid or has expired.")
    return store, params


@bp.put("/storage/<path:key>")
def put_object(key: str) -> Response:
    """Store a presigned upload (whole object or one part)."""
    store, params = _signed(key)
    op = params.get("op")
    if op == "put":
        size = int(params["size"])
        # The signed size, not the API's JSON body limit; one byte more, because under a server that
        # terminates input (gunicorn) Werkzeug raises 413 on a read made at the limit, and the copy
        # loop's last read (the one that sees the end) is such a read. A longer body still fails.
        request.max_content_length = size + 1
        if request.content_length is not None and request.content_length != size:
            return error_response(400, "size_mismatch", f"This upload is exactly {size} bytes.")
        try:
            store.write_object(key, stream=request.stream, limit=size, content_type=params["content_type"])
        except TooLarge:
            raise RequestEntityTooLarge() from None
        return Response(status=200, headers={"ETag": '"stored"'})
    if op == "part":
        limit = max(current_app.config["MEDIA_PART_SIZE"], 5 * 1024 * 1024) * 2
        request.max_content_length = limit + 1  # as above
        try:
            etag = store.write_part(key, upload_id=params["upload_id"], part_number=int(params["part"]),
                                    stream=request.stream, limit=limit)
        except UploadNotFound:
            raise NotFound("No such upload.") from None
        except TooLarge:
            raise RequestEntityTooLarge() from None
        return Response(status=200, headers={"ETag": f'"{etag}"'})
    raise Forbidden("This URL does not allow uploads.")


@bp.get("/storage/<path:key>")
def get_object(key: str) -> Response:
    """Serve a signed read."""
    store, params = _signed(key)
    if params.get("op") != "get":
        raise Forbidden("This URL does not allow reads.")
    path = store.object_path(key)
    if not path.is_file():
        raise NotFound()
    content_type = params.get("content_type") or "application/octet-stream"
    inline = content_type in INLINE_TYPES and not params.get("filename")
    response = send_file(path, mimetype=content_type, conditional=True, max_age=0,
                         as_attachment=not inline, download_name=params.get("filename") or path.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
