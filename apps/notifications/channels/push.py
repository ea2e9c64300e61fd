"""Push: Web Push with VAPID (pywebpush), and a console provider that writes files.

A user may have several devices: the message goes to each of their Web Push
subscriptions and the delivery is sent if any accepted it. A subscription the
push service reports gone (HTTP 404/410: unsubscribed, expired) is deleted.
FCM HTTP v1 is not implemented: FCM-kind subscriptions are left alone here.

Endpoints are user input: each is checked again before the call (the rules may have
changed since it was registered) and the call goes through the outbound guard
(apps.core.outbound), which refuses an endpoint that leads to a non-public address.
"""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path
from typing import Any

import requests
import structlog
from django.conf import settings
from django.utils import timezone
from py_vapid import Vapid  # type: ignore[import-untyped]
from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]

from apps.core.outbound import OutboundRefused, OutboundSession
from apps.notifications.channels.base import (
    NoAddress,
    OutboundMessage,
    PermanentProviderError,
    Provider,
    TransientProviderError,
)
from apps.notifications.inbox import webpush_endpoint_problem, webpush_policy
from apps.notifications.models import DeviceSubscription

logger = structlog.get_logger("apps.notifications.push")

GONE = (404, 410)


def push_payload(message: OutboundMessage) -> str:
    return json.dumps(
        {
            "title": message.push_title,
            "body": message.push_body,
            "type": message.type,
            "notification_id": message.notification_id,
            "data": message.data,
        },
        default=str,
    )


def _devices(message: OutboundMessage) -> list[DeviceSubscription]:
    devices = list(
        DeviceSubscription.objects.filter(
            user_id=message.recipient.pk, kind=DeviceSubscription.Kind.WEBPUSH
        ).order_by("id")
    )
    if not devices:
        raise NoAddress("the user has no Web Push subscription")
    return devices


@functools.cache
def _vapid(private_key: str) -> Any:
    if private_key.lstrip().startswith("-----BEGIN"):
        return Vapid.from_pem(private_key.encode())
    return Vapid.from_string(private_key)


class WebPushProvider(Provider):
    name = "webpush"

    def send(self, message: OutboundMessage) -> str:
        if not settings.VAPID_PRIVATE_KEY:
            raise TransientProviderError("Web Push is not configured (VAPID_PRIVATE_KEY)")
        devices = _devices(message)
        payload = push_payload(message)
        accepted: list[str] = []
        accepted_pks: list[int] = []
        gone: list[int] = []
        transient: list[str] = []
        permanent: list[str] = []
        with OutboundSession(outbound_policy=webpush_policy()) as session:
            for device in devices:
                problem = webpush_endpoint_problem(device.endpoint)
                if problem:
                    permanent.append(f"device {device.pk}: {problem}")
                    continue
                try:
                    response = webpush(
                        subscription_info={"endpoint": device.endpoint, "keys": device.keys},
                        data=payload,
                        vapid_private_key=_vapid(settings.VAPID_PRIVATE_KEY),
                        # pywebpush fills in aud and exp: a fresh dict per call.
                        vapid_claims={"sub": settings.VAPID_SUBJECT},
                        timeout=settings.NOTIFICATION_HTTP_TIMEOUT,
                        ttl=settings.WEBPUSH_TTL_SECONDS,
                        requests_session=session,
                    )
                except WebPushException as exc:
                    status = exc.status_code
                    if status in GONE:
                        gone.append(device.pk)
                    elif status is None or status >= 500 or status in (408, 429):
                        transient.append(f"device {device.pk}: HTTP {status}")
                    else:
                        permanent.append(f"device {device.pk}: HTTP {status}")
                except OutboundRefused as exc:  # leads to an address the guard refuses
                    permanent.append(f"device {device.pk}: {exc}")
                except requests.RequestException as exc:
                    transient.append(f"device {device.pk}: {type(exc).__name__}")
                except (ValueError, TypeError) as exc:  # keys that do not decode
                    permanent.append(f"device {device.pk}: {exc}")
                else:
                    accepted.append(response.headers.get("Location") or str(device.pk))
                    accepted_pks.append(device.pk)
        if gone:
            DeviceSubscription.objects.filter(pk__in=gone).delete()
            logger.info("push_subscriptions_gone", count=len(gone))
        if accepted:
            DeviceSubscription.objects.filter(pk__in=accepted_pks).update(
                last_used_at=timezone.now()
            )
            return " ".join(accepted)[:255]
        if transient:
            raise TransientProviderError("; ".join(transient))
        if permanent:
            raise PermanentProviderError("; ".join(permanent))
        raise NoAddress("every Web Push subscription of the user is gone")


class ConsolePushProvider(Provider):
    """Development: each push is a JSON file under PLATFORM_LOCAL_DIR/push, and a log line."""

    name = "console-push"

    def send(self, message: OutboundMessage) -> str:
        devices = _devices(message)
        message_id = f"console-{uuid.uuid4().hex}"
        folder = Path(settings.LOCAL_DIR) / "push"
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "id": message_id,
            "devices": [d.endpoint for d in devices],
            "payload": json.loads(push_payload(message)),
            "at": timezone.now().isoformat(),
        }
        (folder / f"{message_id}.json").write_text(json.dumps(record, indent=2))
        logger.info("push_written", message_id=message_id, devices=len(devices))
        return message_id
