"""Signing staff into the tenant's Django admin through its identity providers.

/admin/sso/ lists the enabled providers; /admin/sso/<provider>/login starts the same
flow as the API, and its callback signs a staff user into the admin session."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login as session_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.accounts.models import User
from apps.accounts.services.sessions import ClientInfo
from apps.core.admin_site import AdminSignInRefused
from apps.core.errors import PlatformError
from apps.sso.models import IdentityProvider
from apps.sso.services import signin

ADMIN_HOME = "/admin/"
FAILED = "Signing in through {provider} failed ({reason})."


def _callback_uri(request: HttpRequest, provider: str) -> str:
    path = reverse("sso-admin-callback", kwargs={"provider": provider})
    return f"{settings.PLATFORM_URL_SCHEME}://{request.get_host()}{path}"


def _next(request: HttpRequest) -> str:
    target = request.GET.get("next", "")
    if target.startswith("/admin/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts=None, require_https=False
    ):
        return target
    return ADMIN_HOME


@never_cache
@require_GET
def providers(request: HttpRequest) -> HttpResponse:
    found = list(IdentityProvider.objects.filter(enabled=True).values("slug", "name"))
    context = {
        # The admin's header and titles (the tenant's name), as on its own pages.
        **admin.site.each_context(request),
        "title": "Sign in",
        "providers": found,
        "next": _next(request),
    }
    return render(request, "sso/admin_providers.html", context)


@never_cache
@require_GET
def start(request: HttpRequest, provider: str) -> HttpResponse:
    try:
        url = signin.sso_login_begin(
            provider_slug=provider,
            redirect_uri=_next(request),
            callback_uri=_callback_uri(request, provider),
            client=ClientInfo.of(request),
            for_admin=True,
        )
    except PlatformError as exc:
        return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain")
    return HttpResponseRedirect(url)


@never_cache
@require_GET
def callback(request: HttpRequest, provider: str) -> HttpResponse:
    try:
        outcome = signin.sso_login_complete(
            provider_slug=provider,
            state=request.GET.get("state", ""),
            code=request.GET.get("code", ""),
            error=request.GET.get("error", ""),
            callback_uri=_callback_uri(request, provider),
            client=ClientInfo.of(request),
            for_admin=True,
        )
    except PlatformError as exc:
        return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain")
    if outcome.user_id is None:
        messages.error(request, FAILED.format(provider=provider, reason=outcome.error))
        return HttpResponseRedirect(reverse("admin:login"))
    user = User.objects.get(pk=outcome.user_id)
    user.backend = settings.AUTHENTICATION_BACKENDS[0]  # type: ignore[attr-defined]
    try:
        # The site's second step (a factor's code, apps/mfa/admin_site.py) may take over.
        step = admin.site.first_factor_accepted(  # type: ignore[attr-defined]
            request, user, redirect_to=outcome.redirect_to, amr=list(outcome.amr)
        )
    except AdminSignInRefused as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("admin:login"))
    if step is not None:
        return step
    session_login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    return HttpResponseRedirect(outcome.redirect_to)
