from django.urls import path

from apps.audit.apis import AuditEventDetailApi, AuditEventsApi

urlpatterns = [
    path("audit-events", AuditEventsApi.as_view(), name="audit-events"),
    path("audit-events/<int:event_id>", AuditEventDetailApi.as_view(), name="audit-event"),
]
