"""Which of our users a provider's account is: an identity linked before, an account
linked by a verified e-mail address the provider allows linking, or a user provisioned
just in time; and unlinking an identity.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User, normalize_email
from apps.accounts.services.users import user_create, username_from_email
from apps.audit.services import audit_record
from apps.core.errors import ConflictError, PlatformError, ValidationError
from apps.invitations.services import invitation_sso_accept
from apps.organizations.services import member_add
from apps.rbac.models import RoleAssignment
from apps.sso import oidc
from apps.sso.models import ExternalIdentity, IdentityProvider


def user_for(provider: IdentityProvider, claims: dict[str, Any]) -> User:
    """The user the claims are, linked or provisioned; ProviderError (and a rollback) if none."""
    subject = str(claims["sub"])
    email = normalize_email(_claim_str(claims, provider.claim_email))
    email_verified = claims.get("email_verified") in (True, "true")
    if provider.allowed_email_domains:
        domain = email.rpartition("@")[2].lower() if "@" in email else ""
        if domain not in provider.allowed_email_domains:
            raise oidc.ProviderError("email_domain_not_allowed", domain)
    now = timezone.now()
    identity = (
        ExternalIdentity.objects.select_related("user")
        .filter(provider=provider, issuer=provider.issuer, subject=subject)
        .first()
    )
    if identity is not None:
        user = identity.user
        if user.is_deleted or not user.is_active:
            raise oidc.ProviderError("user_inactive")
        identity.last_login_at = now
        identity.save(update_fields=["last_login_at"])
        return user
    existing = User.objects.with_email(email).first() if email else None
    if existing is not None:
        # Never by an address alone: the provider must vouch for it and the tenant allow it.
        if not (provider.allow_email_linking and email_verified):
            raise oidc.ProviderError("account_not_linked", "an account with this email exists")
        if not existing.is_active:
            raise oidc.ProviderError("user_inactive")
        user, how = existing, "linked"
    elif email and email_verified and (invited := _invited(claims, provider, email)):
        user, how = invited, "invited"
    elif provider.jit_enabled:
        if not email:
            raise oidc.ProviderError("email_missing")
        user, how = _provision(provider, claims, email), "provisioned"
    else:
        raise oidc.ProviderError("no_account", "just-in-time provisioning is off")
    ExternalIdentity.objects.create(
        provider=provider,
        issuer=provider.issuer,
        subject=subject,
        user=user,
        email=email,
        last_login_at=now,
    )
    audit_record(
        action=f"sso.identity_{how}",
        target=user,
        changes={"provider": provider.slug, "subject": subject},
        actor=user,
    )
    return user


def _invited(claims: dict[str, Any], provider: IdentityProvider, email: str) -> User | None:
    """The user a pending invitation of the (verified) address makes, if there is one."""
    try:
        return invitation_sso_accept(
            email=email, full_name=_claim_str(claims, provider.claim_name)[:255]
        )
    except PlatformError as exc:
        raise oidc.ProviderError("invitation_not_honoured", exc.message) from None


def _provision(provider: IdentityProvider, claims: dict[str, Any], email: str) -> User:
    full_name = _claim_str(claims, provider.claim_name)[:255]
    username = _claim_str(claims, provider.claim_username) or None
    # A random password satisfies user_create's checks; it is made unusable at once.
    password = secrets.token_urlsafe(32)
    try:
        try:
            with transaction.atomic():
                user = user_create(
                    email=email, password=password, username=username, full_name=full_name
                )
        except (ValidationError, ConflictError):
            # The name is taken or not valid here: the address's, made unique.
            fallback = f"{username_from_email(email)[:140]}-{secrets.token_hex(3)}"
            user = user_create(
                email=email, password=password, username=fallback, full_name=full_name
            )
    except PlatformError as exc:
        raise oidc.ProviderError("provisioning_failed", exc.message) from None
    user.set_unusable_password()
    user.save(update_fields=["password"])
    for role in provider.jit_roles.all():
        RoleAssignment.objects.get_or_create(user=user, role=role, organization=None)
    if provider.jit_organization is not None:
        try:
            member_add(actor=None, organization=provider.jit_organization, user_id=user.pk)
        except PlatformError as exc:
            raise oidc.ProviderError("provisioning_failed", exc.message) from None
    return user


def _claim_str(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name) if name else None
    return value.strip() if isinstance(value, str) else ""


@transaction.atomic
def identity_unlink(*, identity: ExternalIdentity) -> None:
    """Forget that a provider's account signs in as one of our users: their next sign-in
    through it links again (by e-mail, if the provider allows it) or provisions."""
    audit_record(
        action="external_identity.unlinked",
        target=identity,
        changes={
            "provider": identity.provider.slug,
            "subject": identity.subject,
            "user_id": identity.user_id,
        },
    )
    identity.delete()
