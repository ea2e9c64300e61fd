from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.serializers import InputSerializer
from apps.invitations.models import Invitation, InvitationStatus


class InvitationRoleOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class InvitationOutput(serializers.Serializer[Invitation]):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    status = serializers.ChoiceField(
        choices=InvitationStatus.choices,
        read_only=True,
        help_text="pending, accepted, revoked or expired (open but past `expires_at`).",
    )
    roles = InvitationRoleOutput(many=True, read_only=True, help_text="Granted everywhere.")
    organization_id = serializers.IntegerField(read_only=True, allow_null=True)
    invited_by_id = serializers.IntegerField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    sent_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the current link was mailed."
    )
    expires_at = serializers.DateTimeField(read_only=True)
    accepted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    accepted_user_id = serializers.IntegerField(read_only=True, allow_null=True)
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)


class InvitationCreateInput(InputSerializer):
    email = serializers.EmailField(max_length=254)
    roles = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        default=list,
        max_length=20,
        help_text="Role ids or names, granted everywhere on acceptance (the member role "
        "every user has need not be named).",
    )
    organization_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Made a member of it."
    )


class InvitationFilterInput(InputSerializer):
    status = serializers.ChoiceField(choices=InvitationStatus.choices, required=False)
    search = serializers.CharField(
        required=False, max_length=254, allow_blank=True, help_text="Part of the address."
    )
    page = serializers.CharField(required=False)
    page_size = serializers.CharField(required=False)


class InvitationAcceptInput(InputSerializer):
    token = serializers.CharField(max_length=200)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    full_name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class SignupInput(InputSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    full_name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class EmailVerifyInput(InputSerializer):
    token = serializers.CharField(max_length=200)
