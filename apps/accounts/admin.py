from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from apps.accounts.models import Session, User
from apps.accounts.requests import request_user
from apps.accounts.services.passwords import password_set
from apps.accounts.services.sessions import sessions_revoke_audited
from apps.accounts.services.users import (
    user_create,
    user_delete,
    user_restore,
    user_superuser_set,
    user_update,
)
from apps.core.admin_site import ServiceAdminMixin
from apps.core.errors import ForbiddenError, PlatformError
from apps.core.tenancy import in_public_schema
from apps.rbac.grants import require_outranks


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "username", "full_name"]


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = ["email", "username", "full_name", "is_active", "is_staff", "is_superuser"]


class PasswordSetAdminForm(AdminPasswordChangeForm):
    """Django's form, saving through the password service: every session and access token
    of the user ends, and they get the security notice."""

    def save(self, commit: bool = True) -> User:
        user: User = self.user
        password = (
            self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None
        )
        password_set(user=user, new_password=password, how="admin")
        user.refresh_from_db()
        return user


# What the admin changes through user_update (the staff flag, e-mail and so on); the
# superuser flag is set here, by superusers only.
_SERVICE_FIELDS = ("email", "username", "full_name", "is_active", "is_staff")


@admin.register(User)
class UserAdmin(ServiceAdminMixin, DjangoUserAdmin):
    """Every write goes through the accounts services, as the API's do: the same checks
    (nobody changes a user who outranks them, the staff flag needs users.manage
    everywhere, a new e-mail waits for its confirmation, the last owner stays), events and
    audit rows. Soft-deleted users stay listed (filter "is deleted") and can be restored;
    users are never hard-deleted here: the retention job purges them."""

    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    change_password_form = PasswordSetAdminForm
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
        "pending_email", "email_verified", "roles", "organizations", "sessions",
    ]  # fmt: skip
    fieldsets = (
        (None, {"fields": ("email", "pending_email", "email_verified", "username", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        # Permissions come from roles (Roles and role assignments), not Django's groups.
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser")}),
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

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        # What the user holds and where they are signed in, read-only, with links to the
        # pages that change it. The public schema (operators) has no roles or organizations.
        # Each only to those who may read it on its own page (sessions carry addresses).
        parts = {
            "roles": "rbac.view_roleassignment",
            "organizations": "organizations.view_membership",
            "sessions": "accounts.view_session",
        }
        if in_public_schema():
            parts = {"sessions": parts["sessions"]}
        shown = tuple(name for name, perm in parts.items() if request.user.has_perm(perm))
        if not shown:
            return fieldsets
        return [*fieldsets, ("Roles, organizations and sessions", {"fields": shown})]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[User], search_term: str
    ) -> tuple[QuerySet[User], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if request.path.rstrip("/").endswith("/autocomplete"):
            # Picking a user for a role or an organization: live users only.
            results = results.filter(is_deleted=False)
        return results, may_have_duplicates

    @admin.display(description="roles")
    def roles(self, user: User) -> str:
        assignments = user.role_assignments.select_related("role", "organization").order_by(
            "role__name", "organization__path"
        )
        rows = [
            (
                _change_link(a, a.role.name),
                _change_link(a.organization, a.organization.name)
                if a.organization
                else "everywhere",
            )
            for a in assignments
        ]
        add = _admin_url("rbac_roleassignment_add")
        adding = format_html(' <a href="{}?user={}">Assign a role</a>', add, user.pk) if add else ""
        return format_html("{}{}", _table(("role", "where"), rows, "No roles."), adding)

    @admin.display(description="organizations")
    def organizations(self, user: User) -> str:
        memberships = user.memberships.select_related("organization").order_by("organization__path")
        rows = [
            (_change_link(m.organization, m.organization.name), m.title or "-") for m in memberships
        ]
        return _table(("organization", "title"), rows, "No organizations.")

    @admin.display(description="active sessions")
    def sessions(self, user: User) -> str:
        live = Session.objects.live().filter(user=user).order_by("-last_used_at")
        rows = [
            (
                _change_link(s, f"{s.created_at:%Y-%m-%d %H:%M}"),
                f"{s.last_used_at:%Y-%m-%d %H:%M}" if s.last_used_at else "-",
                s.ip_address or "-",
                (s.user_agent or "-")[:80],
            )
            for s in live
        ]
        return _table(("started", "last used", "address", "device"), rows, "No active sessions.")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.append("is_superuser")
        return fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A user who outranks the viewer is shown read-only, their password page refused.
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or _outranked_by(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Soft-delete the selected users (ends their sessions)")
    def soft_delete(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = request_user(request)
        for user in queryset.filter(is_deleted=False).exclude(pk=actor.pk):
            try:
                user_delete(user=user, by=actor)
            except PlatformError as exc:  # outranks the actor, or the tenant's last owner
                messages.error(request, f"{user.email}: {exc.message}")

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        actor = request_user(request)
        if not change:
            created = user_create(
                email=obj.email,
                password=form.cleaned_data.get("password1") or None,
                username=obj.username,
                full_name=obj.full_name,
            )
            obj.pk, obj.password = created.pk, created.password
            obj.created_at, obj.updated_at = created.created_at, created.updated_at
            obj._state.adding = False
            return
        stored = User.objects.get(pk=obj.pk)
        changes = {
            name: getattr(obj, name) for name in _SERVICE_FIELDS if name in form.changed_data
        }
        if changes:
            user_update(user=stored, changes=changes, by=actor, managed=True)
        if "is_superuser" in form.changed_data and actor.is_superuser:
            user_superuser_set(user=stored, is_superuser=obj.is_superuser, by=actor)

    @admin.action(description="Restore the selected soft-deleted users")
    def restore(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = request_user(request)
        restored = 0
        for user in queryset.filter(is_deleted=True):
            try:
                user_restore(user=user, by=actor)
            except PlatformError as exc:
                messages.error(request, f"{user.email}: {exc.message}")
            else:
                restored += 1
        if restored:
            messages.success(request, f"Restored {restored} user(s).")


def _admin_url(name: str, *args: Any) -> str | None:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None


def _change_link(obj: Any, text: str) -> str:
    """`text` linked to `obj`'s admin page, or plain where there is none."""
    url = _admin_url(f"{obj._meta.app_label}_{obj._meta.model_name}_change", obj.pk)
    return format_html('<a href="{}">{}</a>', url, text) if url else text


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]], empty: str) -> str:
    if not rows:
        return empty
    header = format_html_join("", "<th>{}</th>", ((h,) for h in head))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, body)


def _outranked_by(request: HttpRequest, user: User) -> bool:
    try:
        require_outranks(request_user(request), user)
    except ForbiddenError:
        return False
    return True


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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a session ends by revocation (audited, its tokens refused at once)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_session")

    @admin.action(
        description="Revoke the selected sessions (their tokens stop working)",
        permissions=["revoke"],
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        sessions = list(queryset.select_related("user"))
        mine = [s.pk for s in sessions if _outranked_by(request, s.user)]
        if len(mine) < len(sessions):
            messages.error(
                request,
                f"Left {len(sessions) - len(mine)} session(s) alone: their users hold "
                "permissions you lack.",
            )
        ended = sessions_revoke_audited(
            sessions=Session.objects.filter(pk__in=mine),
            reason=Session.RevokeReason.REVOKED_BY_ADMIN,
        )
        messages.success(request, f"Revoked {ended} session(s).")
