"""The organization tree in the tenant's admin, indented by depth, with its members inline.

Every save goes through the services, so paths, depths, the grants cache and the
audit log stay right; the admin is for the tenant's superusers, so no RBAC grant
is checked (`actor=None`).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from apps.accounts.requests import request_user
from apps.core.admin_site import ServiceAdminMixin
from apps.organizations import services
from apps.organizations.models import Membership, Organization
from apps.organizations.selectors import TREE_ORDER


class TreeChoiceField(forms.ModelChoiceField[Organization]):
    """The parent picked from the tree: every organization in tree order, indented by depth
    ("— — Team"), so equal names under different parents stay apart."""

    def label_from_instance(self, obj: Organization) -> str:
        return "— " * obj.depth + obj.name


class OrganizationForm(forms.ModelForm[Organization]):
    parent = TreeChoiceField(
        queryset=Organization.objects.order_by(TREE_ORDER),
        required=False,
        empty_label="(none: a top-level organization)",
    )

    class Meta:
        model = Organization
        fields = ["name", "type", "parent"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        node = self.instance
        if node.pk is not None and "parent" in self.fields:
            # Not under itself or its own subtree (the move would be refused anyway).
            field: Any = self.fields["parent"]
            field.queryset = field.queryset.exclude(path__startswith=node.path)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        parent: Organization | None = data.get("parent")
        node = self.instance
        if parent is not None:
            if node.pk is not None and node.contains(parent):
                self.add_error(
                    "parent",
                    "An organization cannot be placed under itself or one of its descendants.",
                )
            elif node.pk is None and parent.depth + 1 > services.MAX_DEPTH:
                self.add_error("parent", f"The tree is at most {services.MAX_LEVELS} levels deep.")
        return data


class MembershipInline(admin.TabularInline[Membership, Organization]):
    model = Membership
    extra = 0
    fields = ["user", "title", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().get_queryset(request).select_related("user", "organization")


@admin.register(Organization)
class OrganizationAdmin(ServiceAdminMixin, admin.ModelAdmin[Organization]):
    form = OrganizationForm
    list_display = ["indented_name", "type", "depth", "members", "updated_at"]
    list_filter = ["type"]
    search_fields = ["name"]
    ordering = [TREE_ORDER]  # type: ignore[list-item]  # Django takes expressions; the stubs say str
    # The tree's bookkeeping (path, depth) stays out of the form: the parent says it all.
    readonly_fields = ["created_at", "updated_at"]
    fields = ["name", "type", "parent", "created_at", "updated_at"]
    inlines = [MembershipInline]

    @admin.display(description="name", ordering=TREE_ORDER)
    def indented_name(self, organization: Organization) -> str:
        return "— " * organization.depth + organization.name

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        # One query for the page, member counts included.
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description="members", ordering="member_count")
    def members(self, organization: Organization) -> int:
        return int(getattr(organization, "member_count", 0))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk delete would skip the service
        return actions

    def save_model(self, request: HttpRequest, obj: Organization, form: Any, change: bool) -> None:
        parent_id = obj.parent_id
        if not change:
            created = services.organization_create(
                actor=None, name=obj.name, type=obj.type, parent_id=parent_id
            )
            # The inlines are saved against `obj`: make it the row the service wrote.
            obj.pk, obj.path, obj.depth = created.pk, created.path, created.depth
            obj.created_at, obj.updated_at = created.created_at, created.updated_at
            obj._state.adding = False
            return
        stored = Organization.objects.get(pk=obj.pk)
        if parent_id != stored.parent_id:
            services.organization_move(actor=None, organization=stored, parent_id=parent_id)
        updated = services.organization_update(organization=stored, name=obj.name, type=obj.type)
        obj.path, obj.depth, obj.updated_at = updated.path, updated.depth, updated.updated_at

    def save_formset(
        self,
        request: HttpRequest,
        form: Any,
        formset: BaseInlineFormSet[Any, Any, Any],
        change: bool,
    ) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        organization: Organization = form.instance
        memberships = formset.save(commit=False)
        for removed in formset.deleted_objects:
            services.member_remove(membership=removed)
        for membership in memberships:
            if membership.pk is not None:
                stored = Membership.objects.get(pk=membership.pk)
                if stored.user_id == membership.user_id:
                    services.member_update(membership=stored, title=membership.title)
                    continue
                # Another person picked on an existing row: that one leaves, this one
                # joins (each checked and audited as its own step).
                services.member_remove(membership=stored)
            services.member_add(
                actor=request_user(request),
                organization=organization,
                user_id=membership.user_id,
                title=membership.title,
            )

    def delete_model(self, request: HttpRequest, obj: Organization) -> None:
        # Django's confirmation page already refused a node with children (PROTECT) and
        # listed the memberships that go with it.
        services.organization_delete(organization=obj, cascade=True)
