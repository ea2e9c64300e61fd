from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import JSONRenderer

from apps.core.envelope import code_for_status, error_body, success_body


class EnvelopeJSONRenderer(JSONRenderer):
    """Wraps whatever a view returns in the success envelope.

    Error responses are built as envelopes by the exception handler and pass
    through unchanged. A view that returns an error status without raising
    (it should raise) still gets an error envelope, never `success: true`.
    """

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        context = renderer_context or {}
        response = context.get("response")
        request = context.get("request")
        if response is None:
            return super().render(data, accepted_media_type, renderer_context)
        if response.status_code == 204:
            return b""
        if not getattr(response, "enveloped", False):
            if response.status_code >= 400:
                code, message = code_for_status(response.status_code)
                details = data if isinstance(data, dict) else {}
                data = error_body(code, message, details, request)
            else:
                data = success_body(data, request)
        return super().render(data, accepted_media_type, renderer_context)
