"""Media routes under /v1/media: ask for an upload, resume, complete, abort, read, list, delete."""
from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from backend.common.access import current_principal, require
from backend.common.idempotency import idempotent
from backend.common.openapi import answers
from backend.common.pagination import page_schema, paginate
from backend.extensions import db
from backend.media import delivery, library, uploads
from backend.media.errors import WrongState
from backend.media.models import Media
from backend.media.moderation import routes as moderation_routes
from backend.media.schemas import (
    DeliveryReadSchema,
    MediaCreateSchema,
    MediaQueryArgsSchema,
    MediaReadSchema,
    MediaUpdateSchema,
    MediaUploadReadSchema,
    UploadQueryArgsSchema,
    UploadReadSchema,
)
from backend.media.video import routes as video_routes

blp = Blueprint("media", __name__, url_prefix="/v1/media",
                description="Uploads straight to storage, validation, image variants and video, status")


def _me() -> uuid.UUID:
    return uuid.UUID(str(current_principal().user_id))


@blp.route("")
class MediaCollection(MethodView):
    @require()
    @blp.arguments(MediaQueryArgsSchema, location="query")
    @blp.response(200, page_schema(MediaReadSchema))
    def get(self, args):
        """My media, newest first"""
        stmt = library.media_query(owner_id=_me(), kind=args["kind"], status=args["status"])
        return paginate(db.session, stmt, order=(Media.created_at, Media.id),
                        cursor=args["cursor"], limit=args["limit"]).as_response()

    @require()
    @idempotent
    @blp.arguments(MediaCreateSchema)
    @blp.response(201, MediaUploadReadSchema)
    @answers(409)  # quota_exceeded: the upload would not fit
    def post(self, data):
        """Ask for an upload: a presigned PUT, or presigned parts of a multipart upload

        Send an Idempotency-Key to retry safely: the same answer comes back, one reservation.
        """
        state = uploads.request_upload(db.session, owner_id=_me(), **data)
        return {"media": state.media, "upload": uploads.describe(state)}


@blp.route("/<uuid:media_id>")
class MediaResource(MethodView):
    @require()
    @blp.response(200, MediaReadSchema)
    def get(self, media_id):
        """One of my media items: status, progress, attributes, variants"""
        return library.get_media(db.session, owner_id=_me(), media_id=media_id)

    @require()
    @blp.arguments(MediaUpdateSchema)
    @blp.response(200, MediaReadSchema)
    def patch(self, data, media_id):
        """Share an item with signed-in users, or make it private again"""
        return delivery.set_visibility(db.session, owner_id=_me(), media_id=media_id, **data)

    @require()
    @blp.response(204)
    def delete(self, media_id):
        """Delete a media item and every stored object of it"""
        library.delete_media(db.session, owner_id=_me(), media_id=media_id)


@blp.route("/<uuid:media_id>/delivery")
class MediaDelivery(MethodView):
    @require()
    @blp.response(200, DeliveryReadSchema)
    @answers(409)  # media_not_servable: not ready, or held by moderation
    def get(self, media_id):
        """Signed URLs of my item, or of an item shared with signed-in users"""
        me = _me()
        media = delivery.viewable_media(db.session, viewer_id=me, media_id=media_id)
        body = delivery.delivery_of(media, for_owner=media.owner_id == me)
        if body is None:
            raise WrongState("This media cannot be served now.", code="media_not_servable",
                             details={"status": media.status, "quarantined": media.moderation == "quarantined"})
        return body


@blp.route("/<uuid:media_id>/upload")
class MediaUpload(MethodView):
    @require()
    @blp.arguments(UploadQueryArgsSchema, location="query")
    @blp.response(200, UploadReadSchema)
    @answers(409)  # media_wrong_state: the upload is no longer open
    def get(self, args, media_id):
        """Resume: the parts already stored and fresh URLs for the rest"""
        state = uploads.upload_state(db.session, owner_id=_me(), media_id=media_id,
                                     part_numbers=args["part_numbers"])
        return uploads.describe(state)

    @require()
    @blp.response(204)
    @answers(409)  # media_wrong_state: already complete
    def delete(self, media_id):
        """Abort an upload in progress (its parts are removed, its quota freed)"""
        uploads.abort_upload(db.session, owner_id=_me(), media_id=media_id)


@blp.route("/<uuid:media_id>/complete")
class MediaComplete(MethodView):
    @require()
    @blp.response(200, MediaReadSchema)
    @answers(409, 422)  # upload_incomplete, quota_exceeded, media_wrong_state; size_mismatch
    def post(self, media_id):
        """Complete the upload: the bytes are checked, then validated and processed in the background"""
        return uploads.complete_upload(db.session, owner_id=_me(), media_id=media_id)


blueprints = [blp, *moderation_routes.blueprints, *video_routes.blueprints]
