"""Identity providers (configuration) and signing in through them.

A sign-in is three requests: `login_begin` (state, nonce and PKCE verifier kept,
single use), `login_complete` (the provider's code exchanged, the ID token checked,
the user found, linked or provisioned, a one-time code handed back) and
`exchange_code_redeem` (that code traded for our token pair). Every failure is
recorded as an `auth.sso_failed` security event and leaves users and identities as
they were.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import User, normalize_email
from apps.accounts.services.sessions import ClientInfo, session_start_for
from apps.accounts.tokens import TokenPair
from apps.audit.services import audit_record, snapshot
from apps.core.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PlatformError,
    UnauthorizedError,
    ValidationError,
)
from apps.jobs.events import event_record
from apps.sso import oidc
from apps.sso.crypto import secret_decrypt, secret_encrypt
from apps.sso.models import ExchangeCode, ExternalIdentity, IdentityProvider, LoginState

logger = structlog.get_logger("apps.sso")

STATE_INVALID = "This sign-in request is invalid, expired or was already used; start again."
CODE_INVALID = "This sign-in code is invalid, expired or was already used."

_AUDITED_FIELDS = (
    "slug", "name", "issuer", "client_id", "scopes", "claim_email", "claim_name",
    "claim_username", "allowed_email_domains", "allow_email_linking", "jit_enabled",
    "jit_organization", "sso_required", "redirect_uris", "enabled",
)  # fmt: skip


def sso_failed_record(
    *, provider: str, reason: str, detail: str = "", client: ClientInfo | None = None
) -> None:
    """The security event of a failed SSO step: the reason, never a token or secret."""
    event_record(
        type="auth.sso_failed",
        source="sso",
        data={"provider": provider, "reason": reason, "detail": detail[:200]},
        metadata={"security": True, "ip_address": client.ip_address if client else None},
    )
    logger.warning("sso_failed", provider=provider, reason=reason, detail=detail[:200])


# ------------------------------------------------------------------ configuration


def _metadata_for(issuer: str) -> dict[str, Any]:
    try:
        return oidc.discovery_fetch(issuer)
    except oidc.ProviderError as exc:
        raise ValidationError(
            f"The issuer's discovery failed: {exc.detail or exc.reason}",
            details={"issuer": [f"{exc.reason}: {exc.detail}"]},
        ) from None


def _relations_set(provider: IdentityProvider, data: dict[str, Any]) -> None:
    from apps.rbac.models import Role

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
    from apps.organizations.models import Organization

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


# ------------------------------------------------------------------ signing in


def _provider_for_login(slug: str) -> IdentityProvider:
    provider = IdentityProvider.objects.filter(slug=slug, enabled=True).first()
    if provider is None:
        raise NotFoundError("Identity provider not found")
    return provider


def login_begin(
    *,
    provider_slug: str,
    redirect_uri: str,
    callback_uri: str,
    client: ClientInfo,
    for_admin: bool = False,
) -> str:
    """Where to send the browser: the provider's authorization endpoint. For the admin,
    `redirect_uri` is a local path the caller has checked."""
    provider = _provider_for_login(provider_slug)
    if not for_admin and redirect_uri not in provider.redirect_uris:
        sso_failed_record(provider=provider.slug, reason="redirect_uri_not_allowed", client=client)
        raise ValidationError.for_field(
            "redirect_uri", "This redirect URI is not allowed for this provider."
        )
    login = LoginState.objects.create(
        provider=provider,
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(64),  # 86 characters: within PKCE's 43..128
        redirect_uri=redirect_uri,
        for_admin=for_admin,
        expires_at=timezone.now() + timedelta(seconds=settings.SSO_STATE_TTL_SECONDS),
    )
    return oidc.authorization_url(
        metadata=provider.metadata,
        client_id=provider.client_id,
        scopes=list(provider.scopes),
        callback_uri=callback_uri,
        state=login.state,
        nonce=login.nonce,
        code_verifier=login.code_verifier,
    )


@dataclass(frozen=True)
class CallbackOutcome:
    redirect_to: str
    user_id: int | None = None
    error: str = ""


def _with_query(uri: str, **params: str) -> str:
    parts = urlsplit(uri)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _state_consume(*, provider_slug: str, state: str, for_admin: bool) -> LoginState | None:
    now = timezone.now()
    with transaction.atomic():
        login = (
            LoginState.objects.select_for_update()
            .select_related("provider")
            .filter(state=state, provider__slug=provider_slug, for_admin=for_admin)
            .first()
        )
        if login is None or login.used_at is not None or login.expires_at <= now:
            return None
        login.used_at = now
        login.save(update_fields=["used_at"])
        return login


def login_complete(
    *,
    provider_slug: str,
    state: str,
    code: str,
    error: str,
    callback_uri: str,
    client: ClientInfo,
    for_admin: bool = False,
) -> CallbackOutcome:
    """Finish the provider's round trip. A bad or replayed state is an error in the
    envelope (there is no trusted place to send the browser); any later failure sends
    the browser back to the client with `?error=<reason>`.

    For the admin (`for_admin`) no one-time code is made: the outcome names the staff
    user the caller signs in, and a user who is not staff is a failure like the others."""
    login = (
        _state_consume(provider_slug=provider_slug, state=state, for_admin=for_admin)
        if state
        else None
    )
    if login is None:
        sso_failed_record(provider=provider_slug, reason="state_invalid", client=client)
        raise BadRequestError(STATE_INVALID, code="SSO_STATE_INVALID")
    provider = login.provider
    try:
        if not provider.enabled:
            raise oidc.ProviderError("provider_disabled")
        if error:
            raise oidc.ProviderError("provider_denied", error[:100])
        if not code:
            raise oidc.ProviderError("code_missing")
        tokens = oidc.code_exchange(
            metadata=provider.metadata,
            client_id=provider.client_id,
            client_secret=secret_decrypt(provider.client_secret_encrypted),
            scopes=list(provider.scopes),
            callback_uri=callback_uri,
            code=code,
            code_verifier=login.code_verifier,
        )
        claims = oidc.id_token_validate(
            id_token=tokens.id_token,
            metadata=provider.metadata,
            issuer=provider.issuer,
            client_id=provider.client_id,
            nonce=login.nonce,
        )
        claims = _claims_completed(provider, claims, access_token=tokens.access_token)
        with transaction.atomic():
            user = _user_for(provider, claims)
            if for_admin:
                if not user.is_staff:
                    raise oidc.ProviderError("not_staff")  # and the link or user rolls back
                return CallbackOutcome(login.redirect_uri, user_id=user.pk)
            one_time = secrets.token_urlsafe(32)
            ExchangeCode.objects.create(
                code_hash=_hash(one_time),
                provider=provider,
                user=user,
                expires_at=timezone.now() + timedelta(seconds=settings.SSO_EXCHANGE_CODE_SECONDS),
            )
    except IntegrityError:
        # The same person's first sign-in twice at once: the other one linked them.
        exc = oidc.ProviderError("try_again", "a concurrent sign-in linked this identity")
        sso_failed_record(
            provider=provider.slug, reason=exc.reason, detail=exc.detail, client=client
        )
        return CallbackOutcome(_with_query(login.redirect_uri, error=exc.reason), error=exc.reason)
    except oidc.ProviderError as exc:
        sso_failed_record(
            provider=provider.slug, reason=exc.reason, detail=exc.detail, client=client
        )
        redirect_to = _with_query(login.redirect_uri, error=exc.reason)
        return CallbackOutcome(redirect_to, error=exc.reason)
    return CallbackOutcome(_with_query(login.redirect_uri, code=one_time), user_id=user.pk)


def _claims_completed(
    provider: IdentityProvider, claims: dict[str, Any], *, access_token: str
) -> dict[str, Any]:
    """The ID token's claims, completed from the provider's UserInfo endpoint when it
    lacks one the platform reads: a provider may serve the claims of the `email` and
    `profile` scopes from UserInfo only (OIDC Core 5.4)."""
    read = {provider.claim_email, "email_verified", provider.claim_name, provider.claim_username}
    missing = {name for name in read if name} - claims.keys()
    if not missing or not provider.metadata.get("userinfo_endpoint") or not access_token:
        return claims
    userinfo = oidc.userinfo_fetch(
        metadata=provider.metadata, access_token=access_token, subject=claims["sub"]
    )
    return oidc.claims_merge(
        id_token_claims=claims, userinfo=userinfo, claim_email=provider.claim_email
    )


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _claim_str(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name) if name else None
    return value.strip() if isinstance(value, str) else ""


def _user_for(provider: IdentityProvider, claims: dict[str, Any]) -> User:
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


def _provision(provider: IdentityProvider, claims: dict[str, Any], email: str) -> User:
    from apps.accounts.services.users import user_create, username_from_email
    from apps.organizations.services import member_add
    from apps.rbac.models import RoleAssignment

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


def sso_records_cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Delete sign-in states and one-time codes that were used or have expired."""
    now = now or timezone.now()
    states, _ = LoginState.objects.filter(Q(used_at__isnull=False) | Q(expires_at__lt=now)).delete()
    codes, _ = ExchangeCode.objects.filter(
        Q(used_at__isnull=False) | Q(expires_at__lt=now)
    ).delete()
    return {"login_states": states, "exchange_codes": codes}


def exchange_code_redeem(*, code: str, client: ClientInfo) -> TokenPair:
    now = timezone.now()
    with transaction.atomic():
        row = (
            ExchangeCode.objects.select_for_update()
            .select_related("user", "provider")
            .filter(code_hash=_hash(code))
            .first()
        )
        usable = row is not None and row.used_at is None and row.expires_at > now
        if usable and row is not None:
            row.used_at = now
            row.save(update_fields=["used_at"])
    if not usable or row is None:
        sso_failed_record(
            provider=row.provider.slug if row else "", reason="exchange_code_invalid", client=client
        )
        raise UnauthorizedError(CODE_INVALID)
    user = row.user
    if user.is_deleted or not user.is_active:
        sso_failed_record(provider=row.provider.slug, reason="user_inactive", client=client)
        raise UnauthorizedError(CODE_INVALID)
    with transaction.atomic():
        pair = session_start_for(user=user, client=client)
        user.last_login = now
        user.save(update_fields=["last_login"])
        event_record(
            type="auth.sso_login",
            source="sso",
            data={"user_id": user.pk, "provider": row.provider.slug},
            metadata={"security": True, "ip_address": client.ip_address},
        )
    return pair
