"""The admin site, asking staff for their second factor between the password and the session.

A staff user with a confirmed factor who got the password right (or came back from the
tenant's identity provider) is not signed in: the browser's Django session only holds a
pending sign-in (user, where to go, until when, attempts so far) and is sent to
/admin/login/second-factor/, which asks for a code of their authenticator app or one of
their recovery codes. Only a right code signs the session in (Django's `login`, which
cycles the session key). The attempts count against the account's second-factor limit
(`AUTH_RATE_LIMITS["mfa"]`, shared with the API), each wrong one is audited (and
announced) by `second_factor_verify` as on the API, and a pending sign-in dies after
MFA_CHALLENGE_MAX_ATTEMPTS wrong codes or MFA_CHALLENGE_SECONDS.

With MFA_REQUIRED_FOR_OPERATORS, a platform operator without a factor cannot enter the
public admin: the password form says how to enrol one.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as session_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_tenants.utils import get_public_schema_name

from apps.accounts import limits
from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.admin_site import AdminSignInRefused, PlatformAdminSite
from apps.core.errors import (
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
    ValidationError,
)
from apps.core.tenancy import current_schema
from apps.mfa.selectors import RECOVERY_CODE, factor_kinds, user_has_mfa
from apps.mfa.services.requirement import sign_in_mfa
from apps.mfa.services.verify import second_factor_verify
from apps.mfa.step_up import PROVIDER_SECOND_FACTOR_AMR

PENDING_KEY = "mfa_admin_pending"
TEMPLATE = "mfa/admin_second_factor.html"
OPERATOR_ENROL = (
    "Platform operators must use a second factor. Enrol one first: sign in to the API on "
    "this host (POST /api/v1/auth/login), add an authenticator app "
    "(POST /api/v1/auth/mfa/factors), confirm it with its first code, then sign in here."
)
TENANT_ENROL = (
    "Your organization requires a second factor and the time to enrol one is over. Sign in "
    "to the API (POST /api/v1/auth/login answers with an mfa_token), enrol a factor with it "
    "(POST /api/v1/auth/mfa/enrol), then sign in here."
)
NO_CODE_FACTOR = (
    "The admin takes a code of an authenticator app or a recovery code; your account has "
    "neither. Add an authenticator app through the API (POST /api/v1/auth/mfa/factors)."
)
EXPIRED = "The sign-in has expired or had too many wrong codes; sign in again."
WRONG = "The code is not correct, or it has been used already."
EMPTY = "Enter the code of your authenticator app or one of your recovery codes."
_TOTP = re.compile(r"\d{6}")


@dataclass
class PendingSignIn:
    """What the Django session holds between the password and the second factor."""

    user_id: int
    schema: str
    backend: str
    redirect_to: str
    amr: list[str]
    expires_at: float
    attempts: int = 0


def _pending_get(request: HttpRequest) -> PendingSignIn | None:
    raw = request.session.get(PENDING_KEY)
    try:
        pending = PendingSignIn(**raw) if isinstance(raw, dict) else None
    except TypeError:
        pending = None
    if (
        pending is None
        or pending.schema != current_schema()  # begun on another host
        or pending.expires_at <= time.time()
        or pending.attempts >= settings.MFA_CHALLENGE_MAX_ATTEMPTS
    ):
        return None
    return pending


def _pending_user(pending: PendingSignIn) -> User | None:
    user = User.objects.filter(pk=pending.user_id).first()
    if user is None or not user.is_active or user.is_deleted or not user.is_staff:
        return None
    return user


def _method_of(code: str) -> str:
    """Six digits are an authenticator app's code; anything else a recovery code."""
    return "totp" if _TOTP.fullmatch("".join(code.split())) else "recovery_code"


class MfaAdminSite(PlatformAdminSite):
    def get_urls(self) -> list[URLResolver | URLPattern]:
        # Before the admin's own patterns: its catch-all would answer first.
        return [
            path("login/second-factor/", self.second_factor, name="second_factor"),
            *super().get_urls(),
        ]

    def first_factor_accepted(
        self, request: HttpRequest, user: Any, *, redirect_to: str, amr: list[str]
    ) -> HttpResponse | None:
        if "ext" in amr and PROVIDER_SECOND_FACTOR_AMR.intersection(amr):
            # The tenant trusts its identity provider's MFA (apps/sso/amr.py keeps the
            # provider's values only then), as the API's SSO sign-in does.
            return None
        if user_has_mfa(user):
            return self._second_factor_begin(request, user, redirect_to=redirect_to, amr=amr)
        if current_schema() == get_public_schema_name():
            if settings.MFA_REQUIRED_FOR_OPERATORS:
                raise AdminSignInRefused(OPERATOR_ENROL)
            return None
        required = sign_in_mfa(user, has_mfa=False)
        if required is not None and required.enrolment_required:
            # The tenant's policy requires a factor of them and the grace period is over.
            raise AdminSignInRefused(TENANT_ENROL)
        return None

    def _second_factor_begin(
        self, request: HttpRequest, user: User, *, redirect_to: str, amr: list[str]
    ) -> HttpResponse:
        pending = PendingSignIn(
            user_id=user.pk,
            schema=current_schema(),
            backend=getattr(user, "backend", None) or settings.AUTHENTICATION_BACKENDS[0],
            redirect_to=redirect_to,
            amr=list(amr),
            expires_at=time.time() + settings.MFA_CHALLENGE_SECONDS,
        )
        request.session[PENDING_KEY] = asdict(pending)
        return HttpResponseRedirect(reverse("admin:second_factor", current_app=self.name))

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def second_factor(self, request: HttpRequest) -> HttpResponse:
        pending = _pending_get(request)
        user = _pending_user(pending) if pending is not None else None
        if pending is None or user is None:
            request.session.pop(PENDING_KEY, None)
            messages.error(request, EXPIRED)
            return HttpResponseRedirect(reverse("admin:login", current_app=self.name))
        if request.method != "POST":
            kinds = factor_kinds(user)
            if "totp" not in kinds and RECOVERY_CODE not in kinds:
                # A security key alone (WebAuthn): the admin's step takes codes only.
                return self._second_factor_page(request, error=NO_CODE_FACTOR)
            return self._second_factor_page(request)
        code = str(request.POST.get("code", "")).strip()[:64]
        if not code:
            return self._second_factor_page(request, error=EMPTY)
        method = _method_of(code)
        # The API's key (apps/mfa/apis.py): one log per account for the API and the admin.
        account = f"user:{user.pk}"
        try:
            attempt = limits.mfa_check(request, account)
        except (RateLimitedError, ServiceUnavailableError) as exc:
            response = self._second_factor_page(request, error=exc.message, status=exc.status_code)
            response["Retry-After"] = str(exc.retry_after)
            return response
        try:
            amr_value = second_factor_verify(user=user, method=method, payload={"code": code})
        except (UnauthorizedError, ValidationError):
            pending.attempts += 1
            request.session[PENDING_KEY] = asdict(pending)
            if pending.attempts >= settings.MFA_CHALLENGE_MAX_ATTEMPTS:
                request.session.pop(PENDING_KEY, None)
                messages.error(request, EXPIRED)
                return HttpResponseRedirect(reverse("admin:login", current_app=self.name))
            return self._second_factor_page(request, error=WRONG, status=401)
        limits.mfa_succeeded(account, attempt)
        request.session.pop(PENDING_KEY, None)
        session_login(request, user, backend=pending.backend)
        audit_record(
            action="mfa.admin_sign_in",
            target=user,
            changes={"amr": [*pending.amr, amr_value], "method": method},
            actor=user,
        )
        return HttpResponseRedirect(pending.redirect_to)

    def _second_factor_page(
        self, request: HttpRequest, *, error: str = "", status: int = 200
    ) -> HttpResponse:
        context = {
            **self.each_context(request),
            "title": "Second factor",
            "error": error,
            "app_path": request.get_full_path(),
        }
        request.current_app = self.name
        return render(request, TEMPLATE, context, status=status)
