"""`?page=&page_size=` pagination into `{items, total, page, page_size, total_pages}`.

Bad values are a 422 with the parameter named, never a silent fallback; a page
past the end is an empty page with the real total.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet, Window
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ValidationError


def _positive_int(raw: str | None, *, name: str, default: int, maximum: int | None) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError.for_field(name, "A whole number is required.") from None
    if value < 1:
        raise ValidationError.for_field(name, "Must be at least 1.")
    if maximum is not None and value > maximum:
        raise ValidationError.for_field(name, f"Must be at most {maximum}.")
    return value


class PagePagination(BasePagination):
    page_query_param = "page"
    page_size_query_param = "page_size"
    # A page number this large is always a mistake (or a probe): bound it like page_size.
    max_page = 1_000_000

    def __init__(self) -> None:
        self.page = 1
        self.page_size: int = settings.API_PAGE_SIZE_DEFAULT
        self.total = 0

    def paginate_queryset(
        self,
        queryset: QuerySet[Any] | Sequence[Any],
        request: Request,
        view: APIView | None = None,
        *,
        total_with_rows: bool = False,
        total: int | None = None,
    ) -> list[Any]:
        """The page's rows, and `self.total`.

        `total`: the number of rows, when the caller knows it exactly without counting
        them (a count kept by the database, say); no COUNT(*) is run.

        `total_with_rows`: read the total in the page's own statement (`COUNT(*) OVER ()`)
        instead of a `COUNT(*)` of its own, for a query that visits every matching row
        anyway, such as one ordered by a computed rank; an empty page still counts apart.
        (Where an index gives the order, a LIMIT stops early and the window would not.)
        """
        params = request.query_params
        self.page = _positive_int(
            params.get(self.page_query_param), name="page", default=1, maximum=self.max_page
        )
        self.page_size = _positive_int(
            params.get(self.page_size_query_param),
            name="page_size",
            default=settings.API_PAGE_SIZE_DEFAULT,
            maximum=settings.API_PAGE_SIZE_MAX,
        )
        offset = (self.page - 1) * self.page_size
        if total_with_rows and total is None and isinstance(queryset, QuerySet):
            rows = list(
                queryset.annotate(pagination_total=Window(Count("pk")))[
                    offset : offset + self.page_size
                ]
            )
            # An empty page (past the end, or nothing matches) has no row to carry it.
            self.total = rows[0].pagination_total if rows else queryset.count()
            return rows
        if total is not None:
            self.total = total
        else:
            self.total = queryset.count() if isinstance(queryset, QuerySet) else len(queryset)
        if offset >= self.total:
            return []
        return list(queryset[offset : offset + self.page_size])

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "items": data,
                "total": self.total,
                "page": self.page,
                "page_size": self.page_size,
                "total_pages": math.ceil(self.total / self.page_size) if self.total else 0,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["items", "total", "page", "page_size", "total_pages"],
            "properties": {
                "items": schema,
                "total": {"type": "integer", "minimum": 0},
                "page": {"type": "integer", "minimum": 1},
                "page_size": {"type": "integer", "minimum": 1},
                "total_pages": {"type": "integer", "minimum": 0},
            },
        }

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Page number, from 1.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": "Items per page.",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": settings.API_PAGE_SIZE_MAX,
                    "default": settings.API_PAGE_SIZE_DEFAULT,
                },
            },
        ]


_paginated_serializers: dict[str, serializers.Serializer[Any]] = {}


def paginated(item_serializer: type[serializers.Serializer[Any]]) -> serializers.Serializer[Any]:
    """The OpenAPI shape of a paginated list of `item_serializer` (for `extend_schema`).

    Views built on APIView paginate by hand, so drf-spectacular cannot tell
    their list is paginated; this declares the `{items, total, ...}` page.
    """
    name = f"Paginated{item_serializer.__name__.removesuffix('Output')}List"
    if name not in _paginated_serializers:
        _paginated_serializers[name] = inline_serializer(
            name,
            {
                "items": item_serializer(many=True),
                "total": serializers.IntegerField(min_value=0),
                "page": serializers.IntegerField(min_value=1),
                "page_size": serializers.IntegerField(min_value=1),
                "total_pages": serializers.IntegerField(min_value=0),
            },
        )
    return _paginated_serializers[name]
