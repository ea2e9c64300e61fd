"""Signing in through an identity provider.

A sign-in is three requests: `sso_login_begin` (state, nonce and PKCE verifier kept,
single use), `sso_login_complete` (the provider's code exchanged, the ID token checked,
the user found, linked or provisioned, a one-time code handed back) and
`exchange_code_redeem` (that code traded for our token pair). Every failure is
recorded as an `auth.sso_failed` security event and leaves users and identities as
they were. `sso_records_cleanup` (the daily cleanup) deletes the states and codes
that were used or have expired.

Which user the claims are is identities.py; the providers' configuration is
providers.py.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.services.sessions import ClientInfo, session_start
from apps.accounts.tokens import TokenPair
from apps.core.errors import BadRequestError, NotFoundError, UnauthorizedError, ValidationError
from apps.jobs.events import event_record
from apps.mfa.services.challenges import MfaPending, challenge_start
from apps.sso import amr, oidc
from apps.sso.crypto import secret_decrypt
from apps.sso.models import ExchangeCode, IdentityProvider, LoginState
from apps.sso.services.identities import user_for

logger = structlog.get_logger("apps.sso")

STATE_INVALID = "This sign-in request is invalid, expired or was already used; start again."
CODE_INVALID = "This sign-in code is invalid, expired or was already used."


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


def _provider_for_login(slug: str) -> IdentityProvider:
    provider = IdentityProvider.objects.filter(slug=slug, enabled=True).first()
    if provider is None:
        raise NotFoundError("Identity provider not found")
    return provider


def sso_login_begin(
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
    # For the admin: how the user authenticated (apps/sso/amr.py), for its second step.
    amr: tuple[str, ...] = ()


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


def sso_login_complete(
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
        provider_amr = amr.provider_amr(claims)
        with transaction.atomic():
            user = user_for(provider, claims)
            if for_admin:
                if not user.is_staff:
                    raise oidc.ProviderError("not_staff")  # and the link or user rolls back
                session_amr = amr.session_amr(provider_amr, trusted=amr.provider_amr_trusted())
                return CallbackOutcome(login.redirect_uri, user_id=user.pk, amr=tuple(session_amr))
            one_time = secrets.token_urlsafe(32)
            ExchangeCode.objects.create(
                code_hash=_hash(one_time),
                provider=provider,
                user=user,
                provider_amr=provider_amr,
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


def exchange_code_redeem(*, code: str, client: ClientInfo) -> TokenPair | MfaPending:
    """Trade the one-time code for our token pair; or, when a platform second factor is due
    (apps/sso/amr.py `second_step`), for a sign-in challenge answered at
    POST /auth/mfa/verify, as a password sign-in would be."""
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
    session_amr = amr.session_amr(row.provider_amr, trusted=amr.provider_amr_trusted())
    mfa = amr.second_step(user, session_amr)
    challenge = mfa is not None and mfa.challenge
    with transaction.atomic():
        event_record(
            type="auth.sso_login",
            source="sso",
            data={
                "user_id": user.pk,
                "provider": row.provider.slug,
                "provider_amr": list(row.provider_amr),
                "amr": session_amr,
                "mfa_required": challenge,
            },
            metadata={"security": True, "ip_address": client.ip_address},
        )
        if mfa is not None and mfa.challenge:
            return challenge_start(
                user=user,
                ip_address=client.ip_address,
                user_agent=client.user_agent,
                enrolment_required=mfa.enrolment_required,
                amr_first=amr.EXTERNAL,
                now=now,
            )
        pair = session_start(user=user, client=client, amr=session_amr)
        user.last_login = now
        user.save(update_fields=["last_login"])
    if mfa is not None and mfa.enrol_by is not None:
        notices = {"mfa_enrolment_required": True, "mfa_enrol_by": mfa.enrol_by.isoformat()}
        return replace(pair, notices=notices)
    return pair


def sso_records_cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Delete sign-in states and one-time codes that were used or have expired."""
    now = now or timezone.now()
    states, _ = LoginState.objects.filter(Q(used_at__isnull=False) | Q(expires_at__lt=now)).delete()
    codes, _ = ExchangeCode.objects.filter(
        Q(used_at__isnull=False) | Q(expires_at__lt=now)
    ).delete()
    return {"login_states": states, "exchange_codes": codes}
