from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.serializers import InputSerializer, OutputSerializer
from apps.organizations.models import Membership, Organization


class OrganizationOutput(OutputSerializer[Organization]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    type = serializers.CharField(read_only=True)
    parent_id = serializers.IntegerField(read_only=True, allow_null=True)
    path = serializers.CharField(
        read_only=True, help_text='Ids from the root down to this node, e.g. "/1/5/12/".'
    )
    depth = serializers.IntegerField(read_only=True, help_text="0 for a root.")
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class OrganizationCreateInput(InputSerializer):
    name = serializers.CharField(max_length=200)
    type = serializers.CharField(
        max_length=50, required=False, default="team", help_text="company, department, team..."
    )
    parent_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="None or absent: a root."
    )


class OrganizationUpdateInput(InputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    type = serializers.CharField(max_length=50, required=False)


class OrganizationMoveInput(InputSerializer):
    parent_id = serializers.IntegerField(
        allow_null=True, help_text="The new parent; null makes the organization a root."
    )


class OrganizationFilterInput(InputSerializer):
    # `parent` shadows Field.parent only for the type checker: DRF's metaclass takes
    # declared fields off the class.
    parent = serializers.RegexField(  # type: ignore[assignment]
        r"^(null|\d{1,18})$",
        required=False,
        help_text='An organization id (its children), or "null" (the roots).',
        error_messages={"invalid": 'An organization id or "null".'},
    )
    search = serializers.CharField(
        required=False, max_length=200, allow_blank=True, help_text="Part of the name."
    )
    type = serializers.CharField(required=False, max_length=50)
    page = serializers.CharField(required=False)
    page_size = serializers.CharField(required=False)


class DescendantsFilterInput(InputSerializer):
    max_depth = serializers.IntegerField(
        required=False, min_value=1, max_value=64, help_text="Levels below the node (1: children)."
    )
    page = serializers.CharField(required=False)
    page_size = serializers.CharField(required=False)


class DeleteInput(InputSerializer):
    cascade = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also delete the descendants and every membership in the subtree.",
    )


class MemberUserOutput(OutputSerializer[Any]):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    username = serializers.CharField(read_only=True)
    full_name = serializers.CharField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)


class MembershipOutput(serializers.Serializer[Membership]):
    user = MemberUserOutput(read_only=True)
    title = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class MemberAddInput(InputSerializer):
    user_id = serializers.IntegerField(min_value=1)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class MemberUpdateInput(InputSerializer):
    title = serializers.CharField(max_length=200, allow_blank=True)
