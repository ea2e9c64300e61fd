"""Inviting someone into the tenant: create, resend, revoke, mail, accept.

Who may invite: holders of users.manage everywhere (a new user is in no subtree yet,
as for POST /users), and into a role only someone who could grant it (roles.manage
everywhere and every permission of the role, everywhere: `role_assign`'s rule), and
into an organization only someone who manages it (organizations.manage there). The
rule is checked when the invitation is made or resent, and again for the inviter when
it is accepted: an inviter who lost the reach since makes the invitation stale (409).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User, normalize_email
from apps.accounts.services.links import tenant_link
from apps.accounts.services.sessions import ClientInfo, session_start
from apps.accounts.services.users import user_create
from apps.accounts.tokens import TokenPair
from apps.audit.services import audit_record
from apps.core.errors import ConflictError, ForbiddenError, PlatformError, ValidationError
from apps.invitations.links import mail, tenant_name, token_hash, token_new
from apps.invitations.models import Invitation, InvitationStatus
from apps.jobs.events import event_record
from apps.organizations.models import Organization
from apps.organizations.services import member_add
from apps.rbac.catalogue import ALL_CODENAMES, MEMBER, OWNER
from apps.rbac.grants import user_grants
from apps.rbac.models import Role, RoleAssignment
from apps.rbac.services import role_assign
from apps.sso.models import IdentityProvider

logger = structlog.get_logger("apps.invitations")

INVALID = "This invitation link is invalid, has expired, was revoked or was already used."
USER_EXISTS = "A user with this address already exists."
ALREADY_INVITED = "This address has a pending invitation: resend it instead."
STALE = "Whoever invited you can no longer grant what the invitation offers; ask for a new one."
SSO_REQUIRED = (
    "This organization signs in through its identity provider: sign in there with the "
    "invited address to accept the invitation."
)
CLOSED = "This invitation was already accepted or revoked."


def _invalid() -> ValidationError:
    return ValidationError(INVALID, code="INVITATION_INVALID", details={"token": [INVALID]})


def sso_required() -> bool:
    """Whether the tenant requires single sign-on of a new user (no one new is break-glass)."""
    return IdentityProvider.objects.filter(enabled=True, sso_required=True).exists()


# ------------------------------------------------------------------ who may invite


def roles_resolve(refs: Iterable[int | str]) -> list[Role]:
    """Roles named by id or (any case) name; 422 on `roles` for the ones that name none.
    The member role is dropped: every new user gets it anyway."""
    wanted = list(dict.fromkeys(refs))
    found: dict[int | str, Role] = {}
    for ref in wanted:
        is_id = isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit())
        role = (
            Role.objects.filter(pk=int(ref)).first()
            if is_id
            else Role.objects.filter(name__iexact=str(ref).strip()).first()
        )
        if role is not None:
            found[ref] = role
    unknown = [str(ref) for ref in wanted if ref not in found]
    if unknown:
        raise ValidationError.for_field("roles", f"Unknown roles: {', '.join(unknown)}.")
    unique = {role.pk: role for role in found.values() if role.system_key != MEMBER}
    return list(unique.values())


def require_may_invite(
    actor: User, *, roles: Iterable[Role], organization: Organization | None
) -> None:
    """403 unless `actor` may invite someone with these roles into this organization."""
    grants = user_grants(actor)
    if not grants.everywhere("users.manage"):
        raise ForbiddenError("Inviting needs the permission users.manage everywhere.")
    for role in roles:
        if not grants.everywhere("roles.manage"):
            raise ForbiddenError("Inviting into a role needs the permission roles.manage.")
        permissions = ALL_CODENAMES if role.system_key == OWNER else frozenset(role.permissions)
        lacking = sorted(p for p in permissions if not grants.everywhere(p))
        if lacking:
            raise ForbiddenError(
                f"You can only invite into roles whose permissions you hold everywhere; "
                f"{role.name} needs: {', '.join(lacking)}."
            )
    if organization is not None and not grants.allows("organizations.manage", organization):
        raise ForbiddenError("Inviting into an organization needs organizations.manage there.")


# ------------------------------------------------------------------ create, resend, revoke


def _expiry() -> timedelta:
    return timedelta(hours=settings.INVITATION_EXPIRY_HOURS)


def _send_requested(invitation: Invitation, *, action: str) -> None:
    """Record the event whose consumer mails a fresh link (after commit)."""
    event_record(
        type=f"invitation.{action}",
        source="invitations",
        data={
            "invitation_id": invitation.pk,
            "send_id": str(invitation.send_id),
            "email": invitation.email,
        },
    )


def invitation_create(
    *, actor: User, email: str, roles: list[Role], organization: Organization | None = None
) -> Invitation:
    """Invite `email`; 409 when a live user has the address or an unexpired invitation is
    open for it (an expired one is revoked and replaced)."""
    email = normalize_email(email)
    try:
        validate_email(email)
    except DjangoValidationError as exc:
        raise ValidationError(details={"email": list(exc.messages)}) from None
    require_may_invite(actor, roles=roles, organization=organization)
    if User.objects.with_email(email).exists():
        raise ConflictError(USER_EXISTS, details={"email": [USER_EXISTS]})
    now = timezone.now()
    try:
        with transaction.atomic():
            for earlier in Invitation.objects.open().for_email(email).select_for_update():
                if earlier.expires_at > now:
                    raise ConflictError(ALREADY_INVITED, details={"email": [ALREADY_INVITED]})
                _revoke(earlier, by=actor, now=now, reason="replaced")
            invitation = Invitation.objects.create(
                email=email,
                organization=organization,
                invited_by=actor,
                expires_at=now + _expiry(),
                send_id=uuid.uuid4(),
            )
            invitation.roles.set(roles)
            _send_requested(invitation, action="created")
            audit_record(
                action="invitation.created",
                target=invitation,
                changes={
                    "email": email,
                    "roles": sorted(role.name for role in roles),
                    "organization_id": organization.pk if organization else None,
                },
            )
    except IntegrityError:  # a concurrent invitation of the same address
        raise ConflictError(ALREADY_INVITED, details={"email": [ALREADY_INVITED]}) from None
    return invitation


def _locked_open(invitation: Invitation) -> Invitation:
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if locked.accepted_at is not None or locked.revoked_at is not None:
        raise ConflictError(CLOSED)
    return locked


@transaction.atomic
def invitation_resend(*, actor: User, invitation: Invitation) -> Invitation:
    """Mail a new link (the old one stops working at once) valid for a full expiry period."""
    invitation = _locked_open(invitation)
    require_may_invite(actor, roles=invitation.roles.all(), organization=invitation.organization)
    if User.objects.with_email(invitation.email).exists():
        raise ConflictError(USER_EXISTS, details={"email": [USER_EXISTS]})
    invitation.token_hash = None
    invitation.send_id = uuid.uuid4()
    invitation.expires_at = timezone.now() + _expiry()
    invitation.save(update_fields=["token_hash", "send_id", "expires_at"])
    _send_requested(invitation, action="resent")
    audit_record(action="invitation.resent", target=invitation, changes={"email": invitation.email})
    return invitation


def _revoke(invitation: Invitation, *, by: User | None, now: datetime, reason: str) -> None:
    invitation.revoked_at = now
    invitation.revoked_by = by
    invitation.token_hash = None
    invitation.save(update_fields=["revoked_at", "revoked_by", "token_hash"])
    event_record(
        type="invitation.revoked",
        source="invitations",
        data={"invitation_id": invitation.pk, "reason": reason},
    )
    audit_record(
        action="invitation.revoked",
        target=invitation,
        changes={"email": invitation.email, "reason": reason},
    )


@transaction.atomic
def invitation_revoke(*, actor: User, invitation: Invitation) -> Invitation:
    """Void the invitation and its link; 409 once accepted, a no-op when already revoked."""
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if locked.revoked_at is not None:
        return locked
    if locked.accepted_at is not None:
        raise ConflictError(CLOSED)
    if not user_grants(actor).everywhere("users.manage"):
        raise ForbiddenError("Revoking an invitation needs the permission users.manage.")
    _revoke(locked, by=actor, now=timezone.now(), reason="revoked")
    return locked


# ------------------------------------------------------------------ the mail (a worker)


def invitation_send(*, invitation_id: int, send_id: str) -> bool:
    """Make the link's token, keep its hash, mail the link. Called outside any transaction,
    after the request that asked for it committed. False (nothing sent) when this send was
    made already, superseded by a resend, or the invitation is closed. A failed send
    forgets the token again and raises: the task's retry makes a new one."""
    token, hashed = token_new()
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("invited_by")
            .filter(pk=invitation_id, send_id=send_id, token_hash__isnull=True)
            .first()
        )
        if invitation is None or invitation.status != InvitationStatus.PENDING:
            return False
        invitation.token_hash = hashed
        invitation.sent_at = timezone.now()
        invitation.save(update_fields=["token_hash", "sent_at"])
    inviter = invitation.invited_by
    context = {
        "invitation": invitation,
        "tenant_name": tenant_name(),
        "inviter": inviter.get_full_name() if inviter else "",
        "link": tenant_link(settings.INVITATION_ACCEPT_URL, token=token),
        "hours": settings.INVITATION_EXPIRY_HOURS,
        "sso_required": sso_required(),
    }
    try:
        mail("invitations/invitation", context, to=invitation.email).send()
    except BaseException:
        Invitation.objects.filter(pk=invitation.pk, token_hash=hashed).update(token_hash=None)
        raise
    logger.info("invitation_sent", invitation_id=invitation.pk)
    return True


# ------------------------------------------------------------------ accepting


def _user_from(invitation: Invitation, *, password: str | None, full_name: str) -> User:
    """The invited user, with the invitation's roles and membership granted on the inviter's
    authority (409 when it no longer reaches), and the invitation marked accepted. Inside
    the caller's transaction, with the invitation row locked."""
    roles = list(invitation.roles.all())
    inviter = invitation.invited_by
    if roles or invitation.organization is not None:
        if inviter is None or inviter.is_deleted or not inviter.is_active:
            raise ConflictError(STALE, code="INVITATION_STALE")
        try:
            require_may_invite(inviter, roles=roles, organization=invitation.organization)
        except ForbiddenError:
            raise ConflictError(STALE, code="INVITATION_STALE") from None
    user = user_create(email=invitation.email, password=password, full_name=full_name)
    held = set(
        RoleAssignment.objects.filter(user=user, organization=None).values_list(
            "role_id", flat=True
        )
    )
    for role in roles:
        if role.pk not in held and inviter is not None:
            role_assign(actor=inviter, user=user, role=role)
    if invitation.organization is not None and inviter is not None:
        member_add(actor=inviter, organization=invitation.organization, user_id=user.pk)
    invitation.accepted_at = timezone.now()
    invitation.accepted_user = user
    invitation.token_hash = None
    invitation.save(update_fields=["accepted_at", "accepted_user", "token_hash"])
    event_record(
        type="invitation.accepted",
        source="invitations",
        data={"invitation_id": invitation.pk, "user_id": user.pk},
    )
    # The invitee proved the address by the link (or their identity provider did).
    audit_record(
        action="invitation.accepted",
        target=invitation,
        changes={"email": invitation.email, "user_id": user.pk},
        actor=user,
    )
    return user


@transaction.atomic
def invitation_accept(
    *, token: str, password: str, full_name: str, client: ClientInfo
) -> TokenPair:
    """Create the invited user with `password` and sign them in (the returned pair).

    422 INVITATION_INVALID for a token that opens no pending invitation of this tenant;
    403 SSO_REQUIRED where the tenant signs in through its identity provider; 409 when the
    address became a user's, or the inviter's reach no longer covers the invitation.
    Nothing is written unless it all succeeds."""
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("invited_by", "organization")
        .filter(token_hash=token_hash(token))
        .first()
    )
    if invitation is None or invitation.status != InvitationStatus.PENDING:
        raise _invalid()
    if sso_required():
        raise ForbiddenError(SSO_REQUIRED, code="SSO_REQUIRED")
    user = _user_from(invitation, password=password, full_name=full_name.strip())
    return session_start(user=user, client=client)


def invitation_sso_accept(*, email: str, full_name: str) -> User | None:
    """At single sign-on, for an address the provider verified: the user an open, unexpired
    invitation of `email` makes (no password), or None when there is none. Inside the
    sign-in's transaction; PlatformError when the invitation cannot be honoured."""
    invitation = (
        Invitation.objects.open()
        .for_email(normalize_email(email))
        .select_for_update(of=("self",))
        .select_related("invited_by", "organization")
        .first()
    )
    if invitation is None or invitation.status != InvitationStatus.PENDING:
        return None
    try:
        return _user_from(invitation, password=None, full_name=full_name)
    except PlatformError:
        logger.warning("invitation_not_honoured", invitation_id=invitation.pk)
        raise
