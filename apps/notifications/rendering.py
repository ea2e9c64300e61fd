"""What a notification says: its title and body, and each channel's message, from templates.

`templates/notifications/<type>/<name>`, else `templates/notifications/default/<name>`.
Plain text (subjects, e-mail text, SMS, push) is rendered unescaped; HTML with autoescape.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection
from django.template import Context, Engine
from django.template.loader import select_template
from django_tenants.utils import get_tenant_model

from apps.core.tenancy import current_schema
from apps.notifications.channels.base import OutboundMessage
from apps.notifications.models import Notification

if TYPE_CHECKING:
    from apps.accounts.models import User

TITLE_MAX = Notification._meta.get_field("title").max_length or 200


@functools.cache
def _text_engine() -> Engine:
    # Plain text (subjects, e-mail text, SMS, push) must not be HTML-escaped:
    # the same template folders, without autoescape.
    options: dict[str, Any] = settings.TEMPLATES[0]
    return Engine(dirs=list(options["DIRS"]), app_dirs=bool(options["APP_DIRS"]), autoescape=False)


def _names(type: str, name: str) -> list[str]:
    return [f"notifications/{type}/{name}", f"notifications/default/{name}"]


def render_text(type: str, name: str, context: dict[str, Any]) -> str:
    """`templates/notifications/<type>/<name>`, else the default's, rendered unescaped."""
    template = _text_engine().select_template(_names(type, name))
    return template.render(Context(context, autoescape=False)).strip()


def render_html(type: str, name: str, context: dict[str, Any]) -> str:
    return select_template(_names(type, name)).render(context)


def current_tenant() -> Any:
    tenant = getattr(connection, "tenant", None)
    if tenant is not None and hasattr(tenant, "name"):
        return tenant
    return get_tenant_model().objects.filter(schema_name=current_schema()).first()


def _context(*, recipient: User, data: dict[str, Any], tenant: Any, **extra: Any) -> dict[str, Any]:
    return {"recipient": recipient, "data": data, "tenant": tenant, **extra}


def title_body(
    *,
    type: str,
    recipient: User,
    data: dict[str, Any],
    tenant: Any,
    title: str | None,
    body: str | None,
) -> tuple[str, str]:
    context = _context(recipient=recipient, data=data, tenant=tenant)
    if title is None:
        title = " ".join(render_text(type, "subject.txt", context).split())
    if body is None:
        body = render_text(type, "body.txt", context)
    return title[:TITLE_MAX], body


def outbound_message(notification: Notification) -> OutboundMessage:
    """The notification for every channel (templates keyed on its type, rendered as used)."""
    recipient = notification.recipient
    data = dict(notification.data or {})
    context = _context(
        recipient=recipient,
        data=data,
        tenant=current_tenant(),
        title=notification.title,
        body=notification.body,
        notification=notification,
    )

    def render(name: str) -> str:
        if name.endswith(".html"):
            return render_html(notification.type, name, context)
        return render_text(notification.type, name, context)

    return OutboundMessage(
        notification_id=notification.pk,
        type=notification.type,
        recipient=recipient,
        subject=notification.title,
        text=notification.body,
        push_title=notification.title,
        data=data,
        render=render,
    )
