"""Invitations in the tenant's admin: looked at, resent and revoked through the services
(the API's rules, events and audit rows); made through the API."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.requests import request_user
from apps.core.errors import PlatformError
from apps.invitations.models import Invitation
from apps.invitations.services import invitation_resend, invitation_revoke


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin[Invitation]):
    list_display = ["email", "status", "invited_by", "created_at", "expires_at", "accepted_at"]
    list_filter = [
        ("accepted_at", admin.EmptyFieldListFilter),
        ("revoked_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["email"]
    list_select_related = ["invited_by"]
    readonly_fields = [
        "email", "status", "roles", "organization", "invited_by", "created_at", "sent_at",
        "expires_at", "accepted_at", "accepted_user", "revoked_at", "revoked_by",
    ]  # fmt: skip
    exclude = ["token_hash", "send_id"]
    actions = ["resend", "revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an invitation ends by revocation (audited)

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("invitations.change_invitation")

    has_revoke_permission = has_resend_permission

    @admin.display(description="status")
    def status(self, obj: Invitation) -> str:
        return str(obj.status)

    def _each(self, request: HttpRequest, queryset: QuerySet[Invitation], action: Any) -> int:
        actor = request_user(request)
        done = 0
        for invitation in queryset.order_by("pk"):
            try:
                action(actor=actor, invitation=invitation)
                done += 1
            except PlatformError as exc:
                messages.error(request, f"{invitation.email}: {exc.message}")
        return done

    @admin.action(description="Resend the selected invitations (new links)", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        done = self._each(request, queryset, invitation_resend)
        messages.success(request, f"Resent {done} invitation(s).")

    @admin.action(description="Revoke the selected invitations", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        done = self._each(request, queryset, invitation_revoke)
        messages.success(request, f"Revoked {done} invitation(s).")
