"""/api/v1/audit-events: the tenant's audit log, read-only (audit.view); on the public
host, the operators' log (tenants created, changed, deleted, restored, dropped; operators'
own account changes), for platform operators.

Rows are written only by the services that make the changes; nothing here or
anywhere in the API changes or deletes one.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.requests import request_user
from apps.audit import selectors
from apps.audit.serializers import AuditEventFilterInput, AuditEventOutput
from apps.core.pagination import PagePagination, paginated
from apps.core.serializers import validated
from apps.rbac.drf import HasPermission, IsPlatformOperator

_tag = ["audit"]


def _list(view: APIView, request: Request) -> Response:
    filters = validated(AuditEventFilterInput, request.query_params.dict())
    queryset = selectors.audit_event_list(
        actor=request_user(request),
        actor_id=filters.get("actor"),
        target_type=filters.get("target_type"),
        target_id=filters.get("target_id"),
        action=filters.get("action"),
        action_prefix=filters.get("action_prefix"),
        since=filters.get("since"),
        until=filters.get("until"),
    )
    paginator = PagePagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(AuditEventOutput(page, many=True).data)  # type: ignore[arg-type]


def _detail(request: Request, event_id: int) -> Response:
    event = selectors.audit_event_get(actor=request_user(request), event_id=event_id)
    return Response(AuditEventOutput(event).data)


class _ReadOnlyApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": "audit.view"}

    def check_permissions(self, request: Request) -> None:
        # A write is 405 for everyone signed in, with or without audit.view: the log has
        # no write methods at all, which a 403 ("not you") would misstate.
        method = (request.method or "GET").lower()
        if request.user.is_authenticated and method not in ("get", "head", "options"):
            raise MethodNotAllowed(request.method or "")
        super().check_permissions(request)


class AuditEventsApi(_ReadOnlyApi):
    @extend_schema(
        operation_id="audit_events_list",
        parameters=[AuditEventFilterInput],
        responses={200: paginated(AuditEventOutput)},
        description="Newest first. `since` is inclusive, `until` exclusive.",
        tags=_tag,
    )
    def get(self, request: Request) -> Response:
        return _list(self, request)


class AuditEventDetailApi(_ReadOnlyApi):
    @extend_schema(
        operation_id="audit_events_retrieve", responses={200: AuditEventOutput}, tags=_tag
    )
    def get(self, request: Request, event_id: int) -> Response:
        return _detail(request, event_id)


# The same log of the public schema, on the public host: the schema is the only scope, as
# in a tenant; the reader is a platform operator (a staff user of the public schema).


class PlatformAuditEventsApi(_ReadOnlyApi):
    permission_classes = [IsPlatformOperator]

    @extend_schema(
        operation_id="platform_audit_events_list",
        parameters=[AuditEventFilterInput],
        responses={200: paginated(AuditEventOutput)},
        description="The platform's own log (e.g. `action_prefix=tenant.`), newest first. "
        "`since` is inclusive, `until` exclusive.",
        tags=_tag,
    )
    def get(self, request: Request) -> Response:
        return _list(self, request)


class PlatformAuditEventDetailApi(_ReadOnlyApi):
    permission_classes = [IsPlatformOperator]

    @extend_schema(
        operation_id="platform_audit_events_retrieve",
        responses={200: AuditEventOutput},
        tags=_tag,
    )
    def get(self, request: Request, event_id: int) -> Response:
        return _detail(request, event_id)
