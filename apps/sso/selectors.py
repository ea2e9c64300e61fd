from __future__ import annotations

from django.db.models import QuerySet
from django_tenants.utils import get_public_schema_name

from apps.accounts.models import User
from apps.core.tenancy import current_schema
from apps.sso.models import IdentityProvider


def provider_list() -> QuerySet[IdentityProvider]:
    return IdentityProvider.objects.prefetch_related("jit_roles", "break_glass_users")


def password_refused_for(user: User) -> bool:
    """Whether SSO is required of `user`: an enabled provider of the tenant requires it
    and `user` is none of its break-glass accounts."""
    if current_schema() == get_public_schema_name():
        return False  # platform operators: no tenant, no providers
    required = IdentityProvider.objects.filter(enabled=True, sso_required=True)
    if not required.exists():
        return False
    return not required.filter(break_glass_users=user).exists()
