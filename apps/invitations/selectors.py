from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import NotFoundError
from apps.invitations.models import Invitation


def invitation_list(
    *, status: str | None = None, search: str | None = None
) -> QuerySet[Invitation]:
    """Newest first, with their roles loaded (two queries for any page size)."""
    qs = Invitation.objects.prefetch_related("roles")
    if status:
        qs = qs.with_status(status)
    if search:
        qs = qs.filter(email__icontains=search.strip())
    return qs.order_by("-created_at", "-id")


def invitation_get(*, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFoundError("Invitation not found")
    return invitation
