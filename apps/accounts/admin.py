from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.models import Session, User
from apps.accounts.services.sessions import sessions_revoke
from apps.accounts.services.users import user_delete, user_restore
from apps.core.errors import ConflictError


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "username", "full_name"]


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Soft-deleted users stay listed (filter "is deleted") and can be restored; users are
    never hard-deleted here: the retention job purges them."""

    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    ordering = ["email"]
    list_display = [
        "email",
        "username",
        "full_name",
        "is_active",
        "is_staff",
        "is_deleted",
        "created_at",
    ]
    list_filter = ["is_deleted", "is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "username", "full_name"]
    readonly_fields = [
        "created_at", "updated_at", "last_login", "deleted_at", "is_deleted", "tokens_valid_after",
    ]  # fmt: skip
    fieldsets = (
        (None, {"fields": ("email", "username", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        (
            "Access",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (
            "State",
            {
                "fields": (
                    "is_deleted",
                    "deleted_at",
                    "tokens_valid_after",
                    "last_login",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "username", "full_name", "password1", "password2"),
            },
        ),
    )
    actions = ["soft_delete", "restore"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Soft-delete the selected users (ends their sessions)")
    def soft_delete(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor: User = request.user  # type: ignore[assignment]
        for user in queryset.filter(is_deleted=False).exclude(pk=actor.pk):
            try:
                user_delete(user=user, by=actor)
            except ConflictError as exc:  # the tenant's last owner
                messages.error(request, f"{user.email}: {exc.message}")

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        """Admin edits bypass the API's services: keep the last owner and write the audit row."""
        from apps.audit.services import audit_record, snapshot

        fields = ["email", "username", "full_name", "is_active", "is_staff", "is_superuser"]
        if change:
            before = User.objects.get(pk=obj.pk)
            if before.is_active and not obj.is_active:
                from apps.rbac.services import ensure_not_last_owner

                ensure_not_last_owner(before)
            old = snapshot(before, fields)
        super().save_model(request, obj, form, change)
        new = snapshot(obj, fields)
        if not change:
            audit_record(action="user.created", target=obj, changes=new)
            return
        changes = {k: [old[k], v] for k, v in new.items() if old[k] != v}
        if changes:
            audit_record(action="user.updated", target=obj, changes=changes)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        """A password set here ends every session and access token, as a reset does."""
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            from django.contrib.admin.utils import unquote

            from apps.accounts.services.sessions import user_tokens_revoke
            from apps.audit.services import audit_record

            user = User.objects.get(pk=unquote(id))
            with transaction.atomic():
                ended = user_tokens_revoke(user=user, reason=Session.RevokeReason.PASSWORD_RESET)
                audit_record(
                    action="user.password_reset", target=user, changes={"sessions_ended": ended}
                )
        return response

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            with transaction.atomic():
                return super().changeform_view(request, *args, **kwargs)
        except ConflictError as exc:
            messages.error(request, exc.message)
            from django.shortcuts import redirect

            return redirect(request.path)

    @admin.action(description="Restore the selected soft-deleted users")
    def restore(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        restored = 0
        for user in queryset.filter(is_deleted=True):
            try:
                user_restore(user=user)
            except ConflictError as exc:
                messages.error(request, f"{user.email}: {exc.message}")
            else:
                restored += 1
        if restored:
            messages.success(request, f"Restored {restored} user(s).")


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin[Session]):
    list_display = [
        "id", "user", "created_at", "last_used_at", "expires_at", "ip_address", "revoked_at",
        "revoke_reason",
    ]  # fmt: skip
    list_filter = ["revoke_reason", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__email", "ip_address", "user_agent"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in Session._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected sessions (their tokens stop working)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        with transaction.atomic():
            ended = sessions_revoke(queryset, reason=Session.RevokeReason.REVOKED_BY_ADMIN)
        messages.success(request, f"Revoked {ended} session(s).")
