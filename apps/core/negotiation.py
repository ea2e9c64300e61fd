from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

_ANY_JSON = frozenset({"", "*/*", "application/json", "application/*"})


class JSONFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, minus its Accept parsing for the common case.

    The API speaks JSON only; when the client accepts anything or JSON (no
    Accept header, `*/*`, `application/json`), answer with the first renderer
    at once. Any other Accept header goes through DRF's full negotiation, so
    `Accept: application/xml` is still a 406.
    """

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str] | Any:
        renderers = list(renderers)
        accept = request.META.get("HTTP_ACCEPT", "").strip()
        format_param = self.settings.URL_FORMAT_OVERRIDE
        # No query string, no ?format=: skip parsing one into request.query_params.
        asks_for_format = format_suffix or (
            format_param
            and request.META.get("QUERY_STRING")
            and format_param in request.query_params
        )
        if accept in _ANY_JSON and not asks_for_format:
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
