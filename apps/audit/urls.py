from django.urls import path

from apps.audit.apis import (
    AuditEventDetailApi,
    AuditEventsApi,
    PlatformAuditEventDetailApi,
    PlatformAuditEventsApi,
)

urlpatterns = [
    path("audit-events", AuditEventsApi.as_view(), name="audit-events"),
    path("audit-events/<int:event_id>", AuditEventDetailApi.as_view(), name="audit-event"),
]

# The public host's (platform_site/urls_public.py): the public schema's log, for operators.
public_urlpatterns = [
    path("audit-events", PlatformAuditEventsApi.as_view(), name="audit-events"),
    path("audit-events/<int:event_id>", PlatformAuditEventDetailApi.as_view(), name="audit-event"),
]
