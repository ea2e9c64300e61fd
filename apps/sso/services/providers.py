"""Identity providers' configuration: create, change and delete one, audited.

A provider's discovery document is fetched on every write (a change is also the
moment to notice a provider that moved or no longer answers); its redirect URIs
must be https (http only on localhost); the client secret is stored encrypted and
audited only as "(changed)".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record, snapshot
from apps.core.errors import ConflictError, ValidationError
from apps.organizations.models import Organization
from apps.rbac.models import Role
from apps.sso import oidc
from apps.sso.crypto import secret_encrypt
from apps.sso.models import IdentityProvider

_AUDITED_FIELDS = (
    "slug", "name", "issuer", "client_id", "scopes", "claim_email", "claim_name",
    "claim_username", "allowed_email_domains", "allow_email_linking", "jit_enabled",
    "jit_organization", "sso_required", "redirect_uris", "enabled",
)  # fmt: skip


def _metadata_for(issuer: str) -> dict[str, Any]:
    try:
        return oidc.discovery_fetch(issuer)
    except oidc.ProviderError as exc:
        raise ValidationError(
            f"The issuer's discovery failed: {exc.detail or exc.reason}",
            details={"issuer": [f"{exc.reason}: {exc.detail}"]},
        ) from None


def _relations_set(provider: IdentityProvider, data: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if "jit_role_ids" in data:
        ids = set(data["jit_role_ids"])
        roles = list(Role.objects.filter(pk__in=ids))
        if len(roles) != len(ids):
            errors["jit_role_ids"] = ["Unknown role."]
        else:
            provider.jit_roles.set(roles)
    if "break_glass_user_ids" in data:
        ids = set(data["break_glass_user_ids"])
        users = list(User.objects.live().filter(pk__in=ids, is_active=True))
        if len(users) != len(ids):
            errors["break_glass_user_ids"] = ["Unknown or inactive user."]
        else:
            provider.break_glass_users.set(users)
    if errors:
        raise ValidationError(details=errors)


def _fields_apply(provider: IdentityProvider, data: dict[str, Any]) -> None:
    simple = set(_AUDITED_FIELDS) - {"jit_organization"}
    for name in simple & set(data):
        setattr(provider, name, data[name])
    if "allowed_email_domains" in data:
        provider.allowed_email_domains = sorted(
            {d.strip().lower().lstrip("@") for d in data["allowed_email_domains"] if d.strip()}
        )
    if "client_secret" in data:
        provider.client_secret_encrypted = secret_encrypt(data["client_secret"])
    if "jit_organization_id" in data:
        org_id = data["jit_organization_id"]
        if org_id is not None and not Organization.objects.filter(pk=org_id).exists():
            raise ValidationError.for_field("jit_organization_id", "Unknown organization.")
        provider.jit_organization_id = org_id
    bad = [uri for uri in provider.redirect_uris if not _redirect_uri_acceptable(uri)]
    if bad:
        raise ValidationError.for_field(
            "redirect_uris", "Each must be an https URL (http only on localhost)."
        )
    if "openid" not in provider.scopes:
        provider.scopes = ["openid", *provider.scopes]


def _redirect_uri_acceptable(uri: str) -> bool:
    # Where browsers go back to (never fetched by the server): http on localhost is fine.
    parts = urlsplit(uri)
    if not parts.hostname or parts.fragment:
        return False
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
    )


@transaction.atomic
def provider_create(*, data: dict[str, Any]) -> IdentityProvider:
    if IdentityProvider.objects.filter(slug=data["slug"]).exists():
        raise ConflictError("A provider with this slug exists", details={"slug": ["Taken."]})
    provider = IdentityProvider()
    _fields_apply(provider, data)
    provider.metadata = _metadata_for(provider.issuer)
    provider.save()
    _relations_set(provider, data)
    audit_record(
        action="identity_provider.created",
        target=provider,
        changes=snapshot(provider, _AUDITED_FIELDS),
    )
    return provider


@transaction.atomic
def provider_update(*, provider: IdentityProvider, data: dict[str, Any]) -> IdentityProvider:
    if "slug" in data and data["slug"] != provider.slug:
        if IdentityProvider.objects.filter(slug=data["slug"]).exclude(pk=provider.pk).exists():
            raise ConflictError("A provider with this slug exists", details={"slug": ["Taken."]})
    before = snapshot(provider, _AUDITED_FIELDS)
    _fields_apply(provider, data)
    # Fetched again on every update: a change is also the moment to notice a provider
    # that moved or no longer answers.
    provider.metadata = _metadata_for(provider.issuer)
    provider.save()
    _relations_set(provider, data)
    after = snapshot(provider, _AUDITED_FIELDS)
    changes = {k: after[k] for k in after if after[k] != before.get(k)}
    if "client_secret" in data:
        changes["client_secret"] = "(changed)"  # noqa: S105 (a marker, not the secret)
    audit_record(action="identity_provider.updated", target=provider, changes=changes)
    return provider


@transaction.atomic
def provider_delete(*, provider: IdentityProvider) -> None:
    audit_record(
        action="identity_provider.deleted",
        target=provider,
        changes=snapshot(provider, _AUDITED_FIELDS),
    )
    provider.delete()
