"""What every channel shares: the rendered message, the provider contract and its two errors.

A provider talks to one outside service (an SMTP server, Twilio, a push
service). It raises `TransientProviderError` for what a later try can fix
(timeouts, connection errors, 5xx, 429) and `PermanentProviderError` for what it
cannot (a 4xx such as an invalid number): the first is retried with backoff and
counts against the provider's circuit breaker, the second fails the delivery at once.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.core.errors import TransientError
from apps.core.outbound import OutboundPolicy

if TYPE_CHECKING:
    from apps.accounts.models import User


class ProviderError(Exception):
    """A provider could not deliver; `str()` is what the delivery's last_error records."""


class TransientProviderError(ProviderError, TransientError):
    pass


class PermanentProviderError(ProviderError):
    pass


class NoAddress(PermanentProviderError):
    """Nothing to send to (no phone number, no device left): the delivery is skipped."""


def _no_template(name: str) -> str:
    return ""


@dataclass(frozen=True)
class OutboundMessage:
    """One notification for every channel, addressed to its recipient.

    The channel-specific bodies (`html`, `sms`, `push_body`) are rendered by
    `render` (a template name of the notification's type) on first use: a
    channel renders only what it sends.
    """

    notification_id: int
    type: str
    recipient: User
    subject: str
    text: str
    push_title: str
    data: dict[str, Any] = field(default_factory=dict)
    render: Callable[[str], str] = field(default=_no_template, repr=False, compare=False)

    @functools.cached_property
    def html(self) -> str:
        return self.render("body.html")

    @functools.cached_property
    def sms(self) -> str:
        return self.render("sms.txt")

    @functools.cached_property
    def push_body(self) -> str:
        return self.render("push.txt")


class Provider:
    """Sends one message over one outside service; `name` keys its circuit breaker."""

    name: str = "provider"

    def send(self, message: OutboundMessage) -> str:
        """Deliver `message`; returns the provider's message id."""
        raise NotImplementedError

    @contextlib.contextmanager
    def session(self) -> Iterator[Callable[[OutboundMessage], str]]:
        """Send several messages in a row: yields a `send` for them, sharing what a
        provider can share between messages (e-mail: one SMTP connection)."""
        yield self.send


def provider_policy() -> OutboundPolicy:
    """Where a provider's configured URL (TWILIO_BASE_URL...) may lead: https to public
    addresses; with NOTIFICATION_PROVIDER_ALLOW_PRIVATE_ADDRESSES also to this machine
    (plain http too) and the operator's own network, e.g. an SMS gateway or a test stub."""
    allowed = bool(settings.NOTIFICATION_PROVIDER_ALLOW_PRIVATE_ADDRESSES)
    return OutboundPolicy(allow_loopback_http=allowed, allow_private_addresses=allowed)
