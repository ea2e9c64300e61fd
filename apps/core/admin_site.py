"""One admin site that shows each schema only the models that live in it.

The public host's admin manages tenants, domains, beat schedules and platform
operators; a tenant host's admin manages that tenant's own data. Without this,
a tenant's admin would list (and, through the public schema on the search
path, edit) the platform's shared tables.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

from django.apps import apps
from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django_tenants.utils import get_public_schema_name

from apps.core.errors import RateLimitedError, ServiceUnavailableError
from apps.core.tenancy import current_schema

_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


# Django's groups: in a tenant, roles take their place (apps.rbac.backends), so their page
# would only mislead.
_NOT_SHOWN_IN_TENANTS = frozenset({"auth.group"})


def model_lives_in_current_schema(model: type[Model]) -> bool:
    """Whether the admin shows `model` here: its table is in this schema, and it means
    something here."""
    app_config = apps.get_app_config(model._meta.app_label)
    full_name = f"{type(app_config).__module__}.{type(app_config).__name__}"
    public = current_schema() == get_public_schema_name()
    if not public and model._meta.label_lower in _NOT_SHOWN_IN_TENANTS:
        return False
    installed = settings.SHARED_APPS if public else settings.TENANT_APPS
    return app_config.name in installed or full_name in installed


def limited_login_form() -> type[Any]:
    """The admin's login form, showing a sign-in the brute-force limits refused (the
    authentication backend raises it) as the form's error. Built with the site, once the
    apps are loaded: the admin's forms import the user model, which this module must not."""
    from django.contrib.admin.forms import AdminAuthenticationForm

    class LimitedAdminAuthenticationForm(AdminAuthenticationForm):
        refusal: RateLimitedError | ServiceUnavailableError | None = None

        def clean(self) -> dict[str, Any]:
            try:
                return super().clean()
            except (RateLimitedError, ServiceUnavailableError) as exc:
                self.refusal = exc
                raise ValidationError(exc.message, code=exc.code.lower()) from None

    return LimitedAdminAuthenticationForm


class AdminSignInRefused(Exception):
    """Raised by `PlatformAdminSite.first_factor_accepted`: this user may not enter the admin
    (yet); the message says why and what to do."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def admin_login_view(site: PlatformAdminSite) -> type[Any]:
    """Django's LoginView, whose accepted password (or, for the SSO callback, identity) goes
    to the site's `first_factor_accepted` before any session login: a second step may take
    over, or the sign-in be refused with a message on the form."""
    from django.contrib.auth.views import LoginView

    class AdminLoginView(LoginView):
        def form_valid(self, form: Any) -> HttpResponse:
            try:
                step = site.first_factor_accepted(
                    self.request, form.get_user(), redirect_to=self.get_success_url(), amr=["pwd"]
                )
            except AdminSignInRefused as exc:
                form.add_error(None, exc.message)
                return self.form_invalid(form)
            return step if step is not None else super().form_valid(form)

    return AdminLoginView


class PlatformAdminSite(AdminSite):
    site_header = "Platform administration"
    site_title = "Platform admin"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self.login_form = limited_login_form()

    def first_factor_accepted(
        self, request: HttpRequest, user: Any, *, redirect_to: str, amr: list[str]
    ) -> HttpResponse | None:
        """A staff user proved who they are by `amr` (["pwd"]; ["ext", ...] through an
        identity provider). None: sign them in now. A response: a further step (a second
        factor, apps/mfa/admin_site.py) takes over, and signs them in itself. Raise
        AdminSignInRefused to refuse with a message. Nothing is signed in before this."""
        return None

    @method_decorator(never_cache)
    @method_decorator(login_not_required)
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """Django's login view (its `AdminSite.login`, with `admin_login_view`) and the form
        above: a refused sign-in is the form again, with its message, answered 429 (a limit)
        or 503 (Redis unreachable) and Retry-After."""
        response = self._login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        refusal = getattr(form, "refusal", None)
        if isinstance(response, HttpResponse) and refusal is not None:
            response.status_code = refusal.status_code
            response["Retry-After"] = str(refusal.retry_after)
        return response

    def _login(self, request: HttpRequest, extra_context: dict[str, Any] | None) -> Any:
        # django.contrib.admin.sites.AdminSite.login (Django 5.2), with our LoginView.
        from django.contrib.auth import REDIRECT_FIELD_NAME

        if request.method == "GET" and self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        context = {
            **self.each_context(request),
            "title": "Log in",
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": request.user.get_username(),
        }
        if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
            context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=self.name)
        context.update(extra_context or {})
        request.current_app = self.name
        return admin_login_view(self).as_view(
            extra_context=context,
            authentication_form=self.login_form,
            template_name=self.login_template or "admin/login.html",
        )(request)

    def titles(self, request: HttpRequest) -> dict[str, str]:
        """The header, the browser tab's title and the index page's title for this request:
        the tenant's name on its hosts, the platform's on the public host. Per request, never
        set on the site: one site object serves every tenant at once."""
        tenant = getattr(request, "tenant", None)
        if tenant is None or tenant.is_public:
            return {
                "site_header": self.site_header,
                "site_title": self.site_title,
                "index_title": "Tenants and platform operators",
            }
        return {
            "site_header": f"{tenant.name} administration",
            "site_title": f"{tenant.name} admin",
            "index_title": f"{tenant.name}: site administration",
        }

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        titles = self.titles(request)
        context["site_header"] = titles["site_header"]
        context["site_title"] = titles["site_title"]
        return context

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        context = {"title": self.titles(request)["index_title"], **(extra_context or {})}
        return super().index(request, context)

    def _build_app_dict(self, request: HttpRequest, label: Any = None) -> dict[str, Any]:
        registry = self._registry
        self._registry = {m: a for m, a in registry.items() if model_lives_in_current_schema(m)}
        try:
            return super()._build_app_dict(request, label)
        finally:
            self._registry = registry

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        wrapped = super().admin_view(view, cacheable)
        model = getattr(getattr(view, "__self__", None), "model", None)
        if model is None:
            return wrapped

        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not model_lives_in_current_schema(model):
                raise Http404("Not available on this host.")
            return wrapped(request, *args, **kwargs)

        return cast(_View, update_wrapper(guarded, wrapped))


class PlatformAdminConfig(AdminConfig):
    default_site = "apps.core.admin_site.PlatformAdminSite"


class ServiceAdminMixin:
    """For a ModelAdmin whose writes go through services: a rule a service enforces (a
    permission the actor lacks, a conflict, the last owner) ends the admin's transaction
    and comes back as an error message on the page, never a 500."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return self._refusals_as_messages(request, super().changeform_view, *args, **kwargs)  # type: ignore[misc]

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return self._refusals_as_messages(request, super().delete_view, *args, **kwargs)  # type: ignore[misc]

    def _refusals_as_messages(
        self, request: HttpRequest, view: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        from django.contrib import messages
        from django.db import transaction
        from django.shortcuts import redirect

        from apps.core.errors import PlatformError

        try:
            with transaction.atomic():
                return view(request, *args, **kwargs)
        except PlatformError as exc:
            messages.error(request, f"Not saved: {refusal_text(exc)}")
            return redirect(request.get_full_path())


def refusal_text(exc: Any) -> str:
    """A service's refusal as one line: its message, then each field's problems."""
    details = exc.details if isinstance(exc.details, dict) else {}
    fields = "; ".join(
        f"{name}: {' '.join(map(str, problems if isinstance(problems, list) else [problems]))}"
        for name, problems in details.items()
    )
    return f"{exc.message} {fields}".strip()
