from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.accounts.models import Session, User
from apps.core.serializers import InputSerializer, OutputSerializer


class UserOutput(OutputSerializer[User]):
    # Declared rather than a ModelSerializer: that one introspects the model on every
    # instantiation, which cost more than the rest of GET /users/me. Its fields are
    # bound once (OutputSerializer), not deep-copied per response.
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    username = serializers.CharField(read_only=True)
    full_name = serializers.CharField(read_only=True)
    phone_number = serializers.CharField(read_only=True, help_text="E.164, or empty.")
    is_active = serializers.BooleanField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)
    is_superuser = serializers.BooleanField(read_only=True)
    last_login = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    is_deleted = serializers.BooleanField(read_only=True)
    deleted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    pending_email = serializers.CharField(
        read_only=True,
        help_text="A new address asked for, not in effect until confirmed by a link sent to it; "
        "empty when none.",
    )


class UserCreateInput(InputSerializer):
    email = serializers.EmailField(max_length=254)
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    password_confirm = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    full_name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    is_staff = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["password"] != attrs["password_confirm"]:
            raise serializers.ValidationError({"password_confirm": ["The two passwords differ."]})
        return attrs


class UserUpdateInput(InputSerializer):
    email = serializers.EmailField(max_length=254, required=False)
    username = serializers.CharField(max_length=150, required=False)
    full_name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    phone_number = serializers.CharField(max_length=32, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)
    is_staff = serializers.BooleanField(required=False)


class ProfileUpdateInput(InputSerializer):
    username = serializers.CharField(max_length=150, required=False)
    full_name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    phone_number = serializers.CharField(
        max_length=32, required=False, allow_blank=True, help_text="E.164 (+ and digits), or empty."
    )


class UserFilterInput(InputSerializer):
    search = serializers.CharField(required=False, max_length=200, allow_blank=True)
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)
    ordering = serializers.CharField(required=False, max_length=40)
    deleted = serializers.BooleanField(required=False, default=False)
    page = serializers.CharField(required=False)
    page_size = serializers.CharField(required=False)


class LoginInput(InputSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class RefreshInput(InputSerializer):
    refresh_token = serializers.CharField(max_length=4096)


class PasswordChangeInput(InputSerializer):
    old_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class PasswordResetInput(InputSerializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmInput(InputSerializer):
    token = serializers.CharField(max_length=200)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class EmailConfirmInput(InputSerializer):
    token = serializers.CharField(max_length=500)


class TokenPairOutput(serializers.Serializer[Any]):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField(help_text='Always "bearer".')
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    mfa_enrolment_required = serializers.BooleanField(
        required=False,
        help_text="Sign-in only: the tenant requires a second factor; enrol one by "
        "`mfa_enrol_by` (POST /api/v1/auth/mfa/factors) or sign-in will ask for it.",
    )
    mfa_enrol_by = serializers.DateTimeField(required=False)


class RevokedOutput(serializers.Serializer[Any]):
    revoked_sessions = serializers.IntegerField()


class MessageOutput(serializers.Serializer[Any]):
    detail = serializers.CharField()


class SessionOutput(serializers.ModelSerializer[Session]):
    current = serializers.SerializerMethodField()

    class Meta:
        model = Session
        fields = [
            "id",
            "created_at",
            "last_used_at",
            "expires_at",
            "ip_address",
            "user_agent",
            "current",
        ]
        read_only_fields = fields

    def get_current(self, session: Session) -> bool:
        return str(session.pk) == self.context.get("current_session_id")
