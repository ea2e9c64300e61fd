"""/api/v1/notifications: the caller's inbox, preferences and push devices (any signed-in
user, their own only), and sending to many (notifications.send, scoped grants: inside
the sender's subtrees)."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.requests import request_user
from apps.core.pagination import PagePagination, paginated
from apps.core.serializers import validated
from apps.notifications import inbox, selectors
from apps.notifications.send import SEND, batch_create
from apps.notifications.serializers import (
    BatchOutput,
    CountOutput,
    DeviceOutput,
    DeviceRegisterInput,
    NotificationFilterInput,
    NotificationOutput,
    PreferencesOutput,
    PreferencesUpdateInput,
    SendAcceptedOutput,
    SendInput,
    UpdatedOutput,
)
from apps.rbac.drf import AUTHENTICATED, HasPermission
from apps.rbac.grants import request_grants

_tag = ["notifications"]


# ------------------------------------------------------------------ inbox


class NotificationsApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": AUTHENTICATED}

    @extend_schema(
        operation_id="notifications_list",
        parameters=[NotificationFilterInput],
        responses={200: paginated(NotificationOutput)},
        description="Your notifications, newest first, with each channel's delivery status.",
        tags=_tag,
    )
    def get(self, request: Request) -> Response:
        filters = validated(NotificationFilterInput, request.query_params.dict())
        queryset = selectors.notification_list(
            user=request_user(request), unread=filters.get("unread"), type=filters.get("type")
        )
        paginator = PagePagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(NotificationOutput(page, many=True).data)


class UnreadCountApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": AUTHENTICATED}

    @extend_schema(
        operation_id="notifications_unread_count", responses={200: CountOutput}, tags=_tag
    )
    def get(self, request: Request) -> Response:
        return Response({"count": selectors.unread_count(user=request_user(request))})


class ReadAllApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"POST": AUTHENTICATED}

    @extend_schema(
        operation_id="notifications_read_all",
        request=None,
        responses={200: UpdatedOutput},
        description="Mark every unread notification read; `updated` is how many were unread.",
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        updated = inbox.notifications_mark_all_read(user=request_user(request))
        return Response({"updated": updated})


class NotificationReadApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"POST": AUTHENTICATED}

    @extend_schema(
        operation_id="notifications_read",
        request=None,
        responses={200: NotificationOutput},
        description="Mark one notification read (again: no change).",
        tags=_tag,
    )
    def post(self, request: Request, notification_id: int) -> Response:
        notification = selectors.notification_get(
            user=request_user(request), notification_id=notification_id
        )
        inbox.notification_mark_read(notification=notification)
        return Response(NotificationOutput(notification).data)


class NotificationDetailApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"DELETE": AUTHENTICATED}

    @extend_schema(operation_id="notifications_delete", responses={204: None}, tags=_tag)
    def delete(self, request: Request, notification_id: int) -> Response:
        notification = selectors.notification_get(
            user=request_user(request), notification_id=notification_id
        )
        inbox.notification_delete(notification=notification)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------ preferences


class PreferencesApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": AUTHENTICATED, "PUT": AUTHENTICATED}

    @extend_schema(
        operation_id="notifications_preferences",
        responses={200: PreferencesOutput},
        description="Every notification type times every channel; security types are locked on.",
        tags=_tag,
    )
    def get(self, request: Request) -> Response:
        return Response(
            PreferencesOutput(selectors.preferences_view(user=request_user(request))).data
        )

    @extend_schema(
        operation_id="notifications_preferences_update",
        request=PreferencesUpdateInput,
        responses={200: PreferencesOutput},
        description=(
            "Turn types on or off per channel; entries not given keep their setting. All or "
            "nothing: an unknown type or channel, or turning a security notice off, is a 422 "
            "naming each bad entry."
        ),
        tags=_tag,
    )
    def put(self, request: Request) -> Response:
        data = validated(PreferencesUpdateInput, request.data)
        user = request_user(request)
        inbox.preferences_update(user=user, preferences=data["preferences"])
        return Response(PreferencesOutput(selectors.preferences_view(user=user)).data)


# ------------------------------------------------------------------ devices


class DevicesApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": AUTHENTICATED, "POST": AUTHENTICATED}

    @extend_schema(
        operation_id="notifications_devices_list",
        responses={200: DeviceOutput(many=True)},
        tags=_tag,
    )
    def get(self, request: Request) -> Response:
        devices = selectors.device_list(user=request_user(request))
        return Response(DeviceOutput(devices, many=True).data)  # type: ignore[arg-type]

    @extend_schema(
        operation_id="notifications_devices_register",
        request=DeviceRegisterInput,
        responses={
            201: DeviceOutput,
            200: OpenApiResponse(DeviceOutput, description="Registered before: refreshed"),
            409: OpenApiResponse(description="Registered at the same moment by another request"),
        },
        description=(
            "Register a push subscription (Web Push: the browser's endpoint and keys; FCM: the "
            "registration token). Idempotent on the endpoint."
        ),
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(DeviceRegisterInput, request.data)
        device, created = inbox.device_register(
            user=request_user(request),
            kind=data["kind"],
            endpoint=data["endpoint"],
            keys=data.get("keys"),
            user_agent=data["user_agent"] or request.headers.get("User-Agent", ""),
        )
        return Response(
            DeviceOutput(device).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DeviceDetailApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"DELETE": AUTHENTICATED}

    @extend_schema(operation_id="notifications_devices_delete", responses={204: None}, tags=_tag)
    def delete(self, request: Request, device_id: int) -> Response:
        device = selectors.device_get(user=request_user(request), device_id=device_id)
        inbox.device_delete(device=device)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------ sending


class SendApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"POST": SEND}

    @extend_schema(
        operation_id="notifications_send",
        request=SendInput,
        responses={202: SendAcceptedOutput},
        description=(
            "Send to users, the holders of roles and the members of organization subtrees "
            "(live, active users, each once). Answers at once; the worker resolves the audience "
            "and sends in chunks: follow the batch. A sender whose grant is scoped may name only "
            "organizations inside their subtrees and users who are members there (else 403); "
            "role holders are narrowed to those members."
        ),
        tags=_tag,
    )
    def post(self, request: Request) -> Response:
        data = validated(SendInput, request.data)
        batch = batch_create(
            sender=request_user(request),
            grants=request_grants(request),
            type=data["type"],
            title=data["title"],
            body=data["body"],
            data=data["data"],
            channels=data.get("channels"),
            users=data["users"],
            roles=data["roles"],
            organizations=data["organizations"],
        )
        return Response(
            {"batch_id": batch.pk, "status": batch.status},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/notifications/batches/{batch.pk}"},
        )


class BatchDetailApi(APIView):
    permission_classes = [HasPermission]
    required_permissions = {"GET": SEND}

    @extend_schema(
        operation_id="notifications_batches_retrieve",
        responses={200: BatchOutput},
        description=(
            "A send's progress: recipients, notifications written, deliveries per channel and "
            "status. A sender whose grant is scoped sees only their own batches."
        ),
        tags=_tag,
    )
    def get(self, request: Request, batch_id: uuid.UUID) -> Response:
        everywhere = request_grants(request).everywhere(SEND)
        batch = selectors.batch_get(
            batch_id=batch_id, created_by=None if everywhere else request_user(request)
        )
        return Response(BatchOutput(selectors.batch_progress(batch=batch)).data)
