"""SMS: a Twilio-style HTTP provider, and a console provider that writes files for development."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import requests
import structlog
from django.conf import settings
from django.utils import timezone

from apps.core.outbound import OutboundRefused, OutboundSession
from apps.notifications.channels.base import (
    NoAddress,
    OutboundMessage,
    PermanentProviderError,
    Provider,
    TransientProviderError,
    provider_policy,
)

logger = structlog.get_logger("apps.notifications.sms")

# Twilio's limit for one message body (it splits into segments below that).
MAX_BODY = 1600


def _phone(message: OutboundMessage) -> str:
    phone = message.recipient.phone_number
    if not phone:
        raise NoAddress("the user has no phone number")
    return str(phone)


class TwilioSmsProvider(Provider):
    """POST {TWILIO_BASE_URL}/2010-04-01/Accounts/{sid}/Messages.json (basic auth, form
    fields To/From/Body); returns the message sid."""

    name = "twilio"

    def send(self, message: OutboundMessage) -> str:
        to = _phone(message)
        sid = settings.TWILIO_ACCOUNT_SID
        if not (sid and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM_NUMBER):
            # Every message would fail alike: transient, so the breaker holds them until fixed.
            raise TransientProviderError(
                "Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER)"
            )
        url = f"{settings.TWILIO_BASE_URL.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        try:
            with OutboundSession(outbound_policy=provider_policy()) as session:
                response = session.post(
                    url,
                    data={
                        "To": to,
                        "From": settings.TWILIO_FROM_NUMBER,
                        "Body": message.sms[:MAX_BODY],
                    },
                    auth=(sid, settings.TWILIO_AUTH_TOKEN),
                    timeout=settings.NOTIFICATION_HTTP_TIMEOUT,
                )
        except OutboundRefused as exc:
            # TWILIO_BASE_URL (or where it leads) is not allowed: every message would fail
            # alike, so transient, like missing credentials above.
            raise TransientProviderError(f"TWILIO_BASE_URL refused: {exc}") from None
        except requests.RequestException as exc:  # timeouts, refused or reset connections
            raise TransientProviderError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise TransientProviderError(f"HTTP {response.status_code}: {_error_text(response)}")
        if response.status_code >= 400:
            raise PermanentProviderError(f"HTTP {response.status_code}: {_error_text(response)}")
        try:
            return str(response.json()["sid"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientProviderError(f"unexpected answer: {response.text[:200]!r}") from exc


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "message" in body:
        return f"{body.get('code', '')} {body['message']}".strip()
    return json.dumps(body)[:300]


class ConsoleSmsProvider(Provider):
    """Development: each SMS is a JSON file under PLATFORM_LOCAL_DIR/sms, and a log line."""

    name = "console-sms"

    def send(self, message: OutboundMessage) -> str:
        to = _phone(message)
        message_id = f"console-{uuid.uuid4().hex}"
        folder = Path(settings.LOCAL_DIR) / "sms"
        folder.mkdir(parents=True, exist_ok=True)
        record = {"id": message_id, "to": to, "body": message.sms, "at": timezone.now().isoformat()}
        (folder / f"{message_id}.json").write_text(json.dumps(record, indent=2))
        logger.info("sms_written", message_id=message_id, path=str(folder))
        return message_id
