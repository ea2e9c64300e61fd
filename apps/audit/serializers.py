from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.audit.models import AuditEvent
from apps.core.serializers import InputSerializer, OutputSerializer


class AuditEventOutput(OutputSerializer[AuditEvent]):
    id = serializers.IntegerField(read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    actor_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Null for the system (a task, a command)."
    )
    actor_email = serializers.CharField(read_only=True)
    action = serializers.CharField(read_only=True, help_text='e.g. "user.created".')
    target_type = serializers.CharField(read_only=True)
    target_id = serializers.CharField(read_only=True)
    changes = serializers.JSONField(
        read_only=True,
        help_text="{field: [old, new]} for an update; the recorded fields for a creation.",
    )
    ip_address = serializers.CharField(read_only=True, allow_null=True)
    request_id = serializers.CharField(read_only=True)


class AuditEventFilterInput(InputSerializer):
    actor = serializers.IntegerField(
        required=False, min_value=1, help_text="Only rows by this user (id)."
    )
    target_type = serializers.CharField(required=False, max_length=64)
    target_id = serializers.CharField(required=False, max_length=64)
    action = serializers.CharField(
        required=False, max_length=64, help_text='Exact action, e.g. "user.updated".'
    )
    action_prefix = serializers.CharField(
        required=False, max_length=64, help_text='Actions starting with this, e.g. "user.".'
    )
    since = serializers.DateTimeField(required=False, help_text="ISO 8601; from this instant on.")
    until = serializers.DateTimeField(required=False, help_text="ISO 8601; before this instant.")
    page = serializers.CharField(required=False)
    page_size = serializers.CharField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and since > until:
            raise serializers.ValidationError({"since": ["Must not be later than until."]})
        return attrs
