"""What a user changes about their own notifications: inbox state, preferences, devices.

(Sending is `notify.py`, `delivery.py`, `send.py` and `batches.py`; this is the recipient's
side.)
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import ConflictError, ValidationError
from apps.core.outbound import OutboundPolicy, OutboundRefused, url_check
from apps.notifications.models import Channel, DeviceSubscription, Notification, Preference
from apps.notifications.types import NOTIFICATION_TYPES

if TYPE_CHECKING:
    from apps.accounts.models import User

# ------------------------------------------------------------------ inbox


def notification_mark_read(*, notification: Notification) -> Notification:
    """Idempotent: a notification read before keeps the moment it was first read."""
    if notification.read_at is None:
        now = timezone.now()
        # Conditional, so two concurrent calls agree on the first moment.
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.read_at = Notification.objects.values_list("read_at", flat=True).get(
            pk=notification.pk
        )
    return notification


def notifications_mark_all_read(*, user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def notification_delete(*, notification: Notification) -> None:
    # Its deliveries go with it; a send still queued for one finds nothing and stops.
    notification.delete()


# ------------------------------------------------------------------ preferences

UNKNOWN_TYPE = "Unknown notification type."
UNKNOWN_CHANNEL = "Unknown channel."
SECURITY_LOCKED = "Security notices cannot be turned off."
DUPLICATE = "Given twice."


def preference_delete(*, preference: Preference) -> None:
    # Back to the default for this type and channel (on).
    preference.delete()


def preferences_update(*, user: User, preferences: list[dict[str, Any]]) -> None:
    """Apply every entry or none: any unknown type or channel, a duplicate, or an attempt
    to turn a security notice off is a 422 naming each bad entry, and nothing is saved."""
    errors: list[dict[str, list[str]]] = []
    seen: set[tuple[str, str]] = set()
    rows: list[Preference] = []
    for entry in preferences:
        kind = NOTIFICATION_TYPES.get(entry["type"])
        problems: dict[str, list[str]] = {}
        if kind is None:
            problems["type"] = [UNKNOWN_TYPE]
        if entry["channel"] not in Channel.values:
            problems["channel"] = [UNKNOWN_CHANNEL]
        if kind is not None and kind.security and not entry["enabled"]:
            problems["enabled"] = [SECURITY_LOCKED]
        key = (entry["type"], entry["channel"])
        if not problems and key in seen:
            problems["non_field_errors"] = [DUPLICATE]
        seen.add(key)
        errors.append(problems)
        if not problems and kind is not None and not kind.security:
            rows.append(
                Preference(
                    user=user,
                    type=entry["type"],
                    channel=entry["channel"],
                    enabled=entry["enabled"],
                )
            )
    if any(errors):
        raise ValidationError(details={"preferences": errors})
    if rows:
        Preference.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["user", "type", "channel"],
            update_fields=["enabled", "updated_at"],
        )


# ------------------------------------------------------------------ devices

# The push services browsers subscribe to (Chrome, Firefox, Safari, Edge). The worker
# POSTs to a device's endpoint, so an endpoint anywhere else would let a user make the
# worker call any host (an internal one, say). NOTIFICATION_WEBPUSH_HOSTS replaces the
# list; None turns the check off.
DEFAULT_WEBPUSH_HOSTS = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "push.services.mozilla.com",
    "push.apple.com",
    "notify.windows.com",
)
_FCM_TOKEN = re.compile(r"^[A-Za-z0-9_:\-]{20,2000}$")


def webpush_policy() -> OutboundPolicy:
    """What a Web Push endpoint may reach: https to public addresses, and plain http to
    this machine where NOTIFICATION_ALLOW_INSECURE_PUSH_ENDPOINTS is on (development)."""
    allow_http = getattr(settings, "NOTIFICATION_ALLOW_INSECURE_PUSH_ENDPOINTS", settings.DEBUG)
    return OutboundPolicy(allow_loopback_http=bool(allow_http))


def webpush_endpoint_problem(endpoint: str) -> str | None:
    """Why a Web Push endpoint is refused, or None. The URL is read as the HTTP client
    reads it (apps.core.outbound); the address it leads to is checked again when the
    worker connects."""
    try:
        url = url_check(endpoint, webpush_policy())
    except OutboundRefused as exc:
        return str(exc)
    if url.is_plain_http:
        return None  # a local push service in development (url_check allowed it)
    try:
        ipaddress.ip_address(url.host)
        return "Must name a push service by host name."
    except ValueError:
        pass
    allowed = getattr(settings, "NOTIFICATION_WEBPUSH_HOSTS", DEFAULT_WEBPUSH_HOSTS)
    if allowed is not None and not any(
        url.host == suffix or url.host.endswith(f".{suffix}") for suffix in allowed
    ):
        return "Not a known push service."
    return None


def device_register(
    *, user: User, kind: str, endpoint: str, keys: dict[str, str] | None, user_agent: str = ""
) -> tuple[DeviceSubscription, bool]:
    """Register (or refresh) a push subscription; idempotent on (user, endpoint).

    Returns the device and whether it is new. An endpoint belongs to one browser or
    app install, so registering it moves it from whoever had it before: a shared
    device signed into another account must not keep receiving the first one's pushes.
    """
    if kind == DeviceSubscription.Kind.WEBPUSH:
        problem = webpush_endpoint_problem(endpoint)
        if problem:
            raise ValidationError(details={"endpoint": [problem]})
        if not keys:
            raise ValidationError(details={"keys": ["Required for webpush (p256dh and auth)."]})
        stored_keys = {"p256dh": keys["p256dh"], "auth": keys["auth"]}
    else:
        if not _FCM_TOKEN.match(endpoint):
            raise ValidationError(details={"endpoint": ["Must be an FCM registration token."]})
        if keys:
            raise ValidationError(details={"keys": ["Only for webpush."]})
        stored_keys = {}
    fields = {"kind": kind, "keys": stored_keys, "user_agent": user_agent[:300]}
    for _attempt in range(2):
        try:
            with transaction.atomic():
                DeviceSubscription.objects.filter(endpoint=endpoint).exclude(user=user).delete()
                device, created = DeviceSubscription.objects.update_or_create(
                    user=user, endpoint=endpoint, defaults=fields
                )
                return device, created
        except IntegrityError:
            continue  # a concurrent registration of the same endpoint won; update it
    raise ConflictError("The device was registered concurrently; try again.")


def device_delete(*, device: DeviceSubscription) -> None:
    device.delete()
