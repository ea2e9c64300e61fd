from __future__ import annotations

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet
from django_tenants.utils import get_public_schema_name

from apps.accounts.models import User
from apps.core.tenancy import current_schema
from apps.sso.models import IdentityProvider


def provider_list() -> QuerySet[IdentityProvider]:
    return IdentityProvider.objects.prefetch_related("jit_roles", "break_glass_users")


def password_refused() -> Q:
    """The rule, as a condition on users (`User.objects.annotate(refused=password_refused())`):
    SSO is required of a user when an enabled provider of the tenant requires it and the
    user is none of its break-glass accounts. Tenant schemas only (see below)."""
    required = IdentityProvider.objects.filter(enabled=True, sso_required=True)
    return Q(Exists(required)) & ~Q(Exists(required.filter(break_glass_users=OuterRef("pk"))))


def password_refused_for(user: User) -> bool:
    """Whether SSO is required of `user` (`password_refused`), in one query."""
    if current_schema() == get_public_schema_name():
        return False  # platform operators: no tenant, no providers
    return bool(
        User.objects.filter(pk=user.pk)
        .annotate(refused=ExpressionWrapper(password_refused(), output_field=BooleanField()))
        .values_list("refused", flat=True)
        .first()
    )
