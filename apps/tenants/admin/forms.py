"""The tenant admin's forms: creating a tenant, changing it, and its list of domains, each
checked as the services check them, so a problem is a form error rather than a refusal
after submit."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.forms import ModelForm
from django.forms.models import BaseInlineFormSet

from apps.core.admin_widgets import KeyValueField
from apps.tenants import services
from apps.tenants.domains import DomainSpec, domain_list_check
from apps.tenants.models import Domain, Tenant
from apps.tenants.validators import settings_errors, slug_errors

RATE_LIMIT_HELP = (
    "The tenant's API rate limit, e.g. 1200/m, 100/10s or 5000/hour. Empty: the platform's "
    f"({settings.API_RATE_LIMIT or 'none'})."
)


# Settings with a typed field of their own on the tenant's form (`settings_errors` checks
# them); any other key is kept and edited as `key = value` lines.
KNOWN_SETTINGS = frozenset({"rate_limit"})


class _RateLimitField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, max_length=64, help_text=RATE_LIMIT_HELP, **kwargs)


def _clean_rate_limit(value: str) -> str:
    value = value.strip()
    if value and (problems := settings_errors({"rate_limit": value})):
        raise forms.ValidationError([p.removeprefix("rate_limit: ") for p in problems])
    return value


def _other_settings_field() -> KeyValueField:
    return KeyValueField(
        reserved_keys=KNOWN_SETTINGS,
        label="Other settings",
        help_text="Settings without a field of their own.",
    )


def settings_from(data: dict[str, Any]) -> dict[str, Any]:
    """The tenant's settings as the form has them: its typed fields, then the others."""
    others = dict(data.get("other_settings") or {})
    rate_limit = data.get("rate_limit")
    return {**others, "rate_limit": rate_limit} if rate_limit else others


class _SettingsFormMixin:
    """The settings as a whole checked as the service checks them, so a problem is the
    form's error rather than a refusal after submit."""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}  # type: ignore[misc]
        if "other_settings" in cleaned and (problems := settings_errors(settings_from(cleaned))):
            self.add_error("other_settings", problems)  # type: ignore[attr-defined]
        return cleaned


class TenantCreationForm(_SettingsFormMixin, forms.ModelForm[Tenant]):
    rate_limit = _RateLimitField()
    other_settings = _other_settings_field()
    admin_email = forms.EmailField(
        help_text="The tenant's first admin (staff and superuser there)."
    )
    admin_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to have one generated and shown once.",
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug"]
        help_texts = {
            "slug": "Its host becomes <slug>."
            + settings.PLATFORM_BASE_DOMAIN
            + " and its schema <slug>; it cannot change later.",
        }

    def clean_slug(self) -> str:
        slug = str(self.cleaned_data["slug"]).strip().lower()
        if problems := slug_errors(slug):
            raise forms.ValidationError(problems)
        # The service's own check, so a taken slug (also by a tenant pending deletion, or
        # a schema left behind) is this field's error rather than a refusal after submit.
        if (conflict := services.slug_conflict(slug)) is not None:
            raise forms.ValidationError(conflict)
        return slug

    def clean_rate_limit(self) -> str:
        return _clean_rate_limit(str(self.cleaned_data.get("rate_limit") or ""))

    def clean_admin_password(self) -> str:
        password = str(self.cleaned_data.get("admin_password") or "")
        if password:
            validate_password(password)
        return password


class TenantChangeForm(_SettingsFormMixin, forms.ModelForm[Tenant]):
    rate_limit = _RateLimitField()
    other_settings = _other_settings_field()

    class Meta:
        model = Tenant
        fields = ["name", "is_active"]
        help_texts = {"is_active": "Unticked: the tenant's hosts answer 404; its data is kept."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = dict(self.instance.settings or {})
        if "rate_limit" in self.fields:
            self.fields["rate_limit"].initial = current.get("rate_limit")
        if "other_settings" in self.fields:
            self.fields["other_settings"].initial = {
                key: value for key, value in current.items() if key not in KNOWN_SETTINGS
            }

    def clean_rate_limit(self) -> str:
        return _clean_rate_limit(str(self.cleaned_data.get("rate_limit") or ""))


class DomainForm(forms.ModelForm[Domain]):
    class Meta:
        model = Domain
        fields = ["domain", "is_primary"]

    def clean_domain(self) -> str:
        return str(self.cleaned_data["domain"]).strip().lower().rstrip(".")


class DomainFormSet(BaseInlineFormSet[Domain, Tenant, ModelForm[Domain]]):
    """The tenant's domains as one list, checked and saved as one by `tenant_domains_set`."""

    def specs(self) -> list[DomainSpec]:
        return [
            DomainSpec(form.cleaned_data["domain"], bool(form.cleaned_data.get("is_primary")))
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and form.cleaned_data.get("domain")
            and not (self.can_delete and form.cleaned_data.get("DELETE"))
        ]

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        _wanted, problems = domain_list_check(tenant=self.instance, domains=self.specs())
        if problems:
            raise forms.ValidationError(problems)
