"""Imports every model module so the metadata (and Alembic) sees every table."""
from backend.analytics import models as analytics_models  # noqa: F401
from backend.audit import models as audit_models  # noqa: F401
from backend.auth import models as auth_models  # noqa: F401
from backend.auth.factors import models as auth_factor_models  # noqa: F401
from backend.auth.passkeys import models as passkey_models  # noqa: F401
from backend.common import models as common_models  # noqa: F401
from backend.media import models as media_models  # noqa: F401
from backend.media.moderation import models as moderation_models  # noqa: F401
from backend.notifications import models as notification_models  # noqa: F401
from backend.notifications.campaigns import models as campaign_models  # noqa: F401
from backend.notifications.delivery import models as delivery_models  # noqa: F401
from backend.webhooks import models as webhook_models  # noqa: F401
