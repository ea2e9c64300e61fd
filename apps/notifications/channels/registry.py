"""Which provider sends a channel's deliveries: the inbox for in-app, else the class
named in settings (NOTIFICATION_EMAIL_PROVIDER...)."""

from __future__ import annotations

import functools

from django.conf import settings
from django.utils.module_loading import import_string

from apps.notifications.channels.base import Provider
from apps.notifications.channels.in_app import InboxProvider

SETTING_PER_CHANNEL = {
    "email": "NOTIFICATION_EMAIL_PROVIDER",
    "sms": "NOTIFICATION_SMS_PROVIDER",
    "push": "NOTIFICATION_PUSH_PROVIDER",
}


def provider_for(channel: str) -> Provider:
    """The provider configured for `channel` (one instance per process and dotted path)."""
    if channel == "in_app":
        return InboxProvider()
    return _load(getattr(settings, SETTING_PER_CHANNEL[channel]))


@functools.cache
def _load(dotted_path: str) -> Provider:
    provider = import_string(dotted_path)()
    if not isinstance(provider, Provider):
        raise TypeError(f"{dotted_path} is not a notifications Provider")
    return provider
