from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from rest_framework import serializers

from apps.core.serializers import InputSerializer, OutputSerializer
from apps.notifications.models import Channel, DeviceSubscription

# ------------------------------------------------------------------ inbox


# One enum in the schema for the channels (the send input's): drf-spectacular names an
# enum after its field, and the same choices under two names is a warning.
_CHANNEL_HELP = "in_app, email, sms or push."


class DeliveryStatusOutput(serializers.Serializer[Any]):
    channel = serializers.CharField(read_only=True, help_text=_CHANNEL_HELP)
    status = serializers.CharField(read_only=True, help_text="pending, sent, failed or skipped.")
    sent_at = serializers.DateTimeField(read_only=True, allow_null=True)


class NotificationOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    type = serializers.CharField(read_only=True)
    title = serializers.CharField(read_only=True)
    body = serializers.CharField(read_only=True)
    # The field named like Serializer.data: DRF takes declared fields off the class.
    data = serializers.JSONField(read_only=True)  # type: ignore[assignment]
    is_security = serializers.BooleanField(read_only=True)
    read_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    deliveries = DeliveryStatusOutput(many=True, read_only=True)


class NotificationFilterInput(InputSerializer):
    unread = serializers.BooleanField(required=False, allow_null=True, default=None)
    type = serializers.CharField(required=False, max_length=64)
    page = serializers.CharField(required=False)
    page_size = serializers.CharField(required=False)


class CountOutput(serializers.Serializer[Any]):
    count = serializers.IntegerField(min_value=0)


class UpdatedOutput(serializers.Serializer[Any]):
    updated = serializers.IntegerField(min_value=0)


# ------------------------------------------------------------------ preferences


class PreferenceOutput(serializers.Serializer[Any]):
    type = serializers.CharField()
    channel = serializers.CharField(help_text=_CHANNEL_HELP)
    enabled = serializers.BooleanField()
    locked = serializers.BooleanField(help_text="A security notice: always on, cannot be changed.")


class NotificationTypeOutput(serializers.Serializer[Any]):
    type = serializers.CharField()
    description = serializers.CharField()
    security = serializers.BooleanField()


class PreferencesOutput(serializers.Serializer[Any]):
    types = NotificationTypeOutput(many=True)
    channels = serializers.ListField(child=serializers.CharField(), help_text=_CHANNEL_HELP)
    preferences = PreferenceOutput(many=True, help_text="Every type times every channel.")


class PreferenceInput(InputSerializer):
    # Checked against the registry by the service, so every bad entry is reported at once.
    type = serializers.CharField(max_length=64)
    channel = serializers.CharField(max_length=16)
    enabled = serializers.BooleanField()


class PreferencesUpdateInput(InputSerializer):
    preferences = serializers.ListField(child=PreferenceInput(), allow_empty=False, max_length=500)


# ------------------------------------------------------------------ devices


def _base64url_bytes(value: str) -> bytes:
    if not value or any(c in value for c in "+/ \t\r\n"):
        raise serializers.ValidationError("Must be base64url (RFC 4648 section 5).")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise serializers.ValidationError("Must be base64url (RFC 4648 section 5).") from None


class WebPushKeysInput(InputSerializer):
    p256dh = serializers.CharField(max_length=200, trim_whitespace=False)
    auth = serializers.CharField(max_length=100, trim_whitespace=False)

    def validate_p256dh(self, value: str) -> str:
        decoded = _base64url_bytes(value)
        # An uncompressed P-256 point (RFC 8291): 0x04, then x and y.
        if len(decoded) != 65 or decoded[0] != 0x04:
            raise serializers.ValidationError("Must be an uncompressed P-256 public key.")
        return value

    def validate_auth(self, value: str) -> str:
        if len(_base64url_bytes(value)) != 16:
            raise serializers.ValidationError("Must be the 16-byte authentication secret.")
        return value


class DeviceRegisterInput(InputSerializer):
    kind = serializers.ChoiceField(choices=DeviceSubscription.Kind.choices)
    endpoint = serializers.CharField(
        max_length=2000, help_text="The Web Push subscription URL, or the FCM registration token."
    )
    keys = WebPushKeysInput(required=False, help_text="Web Push only.")
    user_agent = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class DeviceOutput(OutputSerializer[DeviceSubscription]):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(choices=DeviceSubscription.Kind.choices, read_only=True)
    endpoint = serializers.CharField(read_only=True)
    user_agent = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)


# ------------------------------------------------------------------ sending

MAX_DATA_BYTES = 8_000
MAX_IDS = 10_000


def _ids(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=MAX_IDS,
        help_text=help_text,
    )


class SendInput(InputSerializer):
    type = serializers.CharField(max_length=64, help_text="A non-security notification type.")
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=10_000, allow_blank=True, required=False, default="")
    data = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        required=False,
        allow_empty=False,
        max_length=len(Channel.choices),
        help_text="Limit to these channels (each recipient's preferences still apply).",
    )
    users = _ids("User ids.")
    roles = _ids("Role ids: everyone holding the role.")
    organizations = _ids("Organization ids: the members of each one's subtree.")

    def validate_data(self, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_DATA_BYTES:
            raise serializers.ValidationError(f"At most {MAX_DATA_BYTES} bytes as JSON.")
        return value


class SendAcceptedOutput(serializers.Serializer[Any]):
    batch_id = serializers.UUIDField()
    status = serializers.CharField()


class ChannelCountsOutput(serializers.Serializer[Any]):
    pending = serializers.IntegerField(min_value=0)
    sent = serializers.IntegerField(min_value=0)
    failed = serializers.IntegerField(min_value=0)
    skipped = serializers.IntegerField(min_value=0)
    total = serializers.IntegerField(min_value=0)


class ChunksOutput(serializers.Serializer[Any]):
    total = serializers.IntegerField(min_value=0)
    done = serializers.IntegerField(min_value=0)


class AudienceOutput(serializers.Serializer[Any]):
    users = serializers.ListField(child=serializers.IntegerField())
    roles = serializers.ListField(child=serializers.IntegerField())
    organizations = serializers.ListField(child=serializers.IntegerField())


class BatchOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    type = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField()
    data = serializers.JSONField()  # type: ignore[assignment]
    channels = serializers.ListField(child=serializers.CharField())
    audience = AudienceOutput()
    status = serializers.CharField(help_text="queued, running, done or failed.")
    created_by = serializers.IntegerField(allow_null=True, source="created_by_id")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    total_recipients = serializers.IntegerField(min_value=0)
    notifications_created = serializers.IntegerField(min_value=0)
    failed_recipients = serializers.IntegerField(
        min_value=0, help_text="Recipients the worker could not notify (see the worker's log)."
    )
    chunks = ChunksOutput(help_text="The fan-out's chunks: planned and finished.")
    deliveries = serializers.DictField(
        child=ChannelCountsOutput(), help_text="Per channel: deliveries by status."
    )
    delivery_totals = ChannelCountsOutput(help_text="Every channel together, by status.")
