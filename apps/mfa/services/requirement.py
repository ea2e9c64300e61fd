"""What sign-in asks of a user who got their password right: nothing more, a second
factor, or (the tenant's policy requires one and the grace period is over) an enrolment.

Read-only: the policy is the tenant's setting (apps/mfa/policy.py), the rest is the user's
roles and the single sign-on providers' break-glass lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

from apps.mfa.policy import REQUIRED, REQUIRED_FOR_PERMISSIONS, MfaPolicy, tenant_policy
from apps.rbac.catalogue import ALL_CODENAMES, OWNER
from apps.rbac.models import RoleAssignment
from apps.sso.models import IdentityProvider

if TYPE_CHECKING:
    from apps.accounts.models import User


@dataclass(frozen=True)
class SignInMfa:
    """`challenge`: no session yet, the client answers a challenge (a second factor, or an
    enrolment when `enrolment_required`). Else a session, and when `enrol_by` is set the
    answer says the user must enrol by then."""

    challenge: bool
    enrolment_required: bool = False
    enrol_by: datetime | None = None


def _is_break_glass(user: User) -> bool:
    # The owners' way back in when the identity provider fails: never locked out by MFA
    # either (they are few, named by the tenant, and audited).
    return IdentityProvider.objects.filter(break_glass_users=user).exists()


def _requirement_since(user: User, policy: MfaPolicy) -> datetime | None:
    """Since when the policy has required a second factor of `user`; None if it does not.

    Mode "required": since the user exists. Mode "required_for_permissions": since the
    earliest assignment the user still holds of a role with one of the permissions (an
    owner's holds them all). Never earlier than the policy's `enforced_since`."""
    if policy.mode == REQUIRED:
        since = user.created_at
    elif policy.mode == REQUIRED_FOR_PERMISSIONS:
        wanted = policy.permissions & ALL_CODENAMES
        if user.is_superuser:
            since = user.created_at  # a tenant superuser holds every permission
        else:
            rows = RoleAssignment.objects.filter(user=user).values_list(
                "role__system_key", "role__permissions", "created_at"
            )
            held = [
                created
                for system_key, permissions, created in rows
                if system_key == OWNER or wanted & set(permissions or [])
            ]
            if not held:
                return None
            since = min(held)
    else:
        return None
    if policy.enforced_since is not None:
        since = max(since, policy.enforced_since)
    return since


def sign_in_mfa(user: User, *, has_mfa: bool, now: datetime | None = None) -> SignInMfa | None:
    """What sign-in asks of `user` beyond the password; None: nothing (a session at once)."""
    if has_mfa:
        return SignInMfa(challenge=True)
    policy = tenant_policy()
    if policy.is_optional:
        return None
    since = _requirement_since(user, policy)
    if since is None or _is_break_glass(user):
        return None
    now = now or timezone.now()
    enrol_by = since + timedelta(days=policy.grace_days)
    if now < enrol_by:
        return SignInMfa(challenge=False, enrol_by=enrol_by)
    return SignInMfa(challenge=True, enrolment_required=True)
