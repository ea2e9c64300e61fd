"""The users-list baselines of `identity.py`: plain DRF `ListAPIView`s at `/bench/users...`.

`/bench/users` is what a plain DRF service would write for "the first 20
users", over the same table, in the same schema, and nothing else; it is the
acceptance baseline. Exactly what it includes:

- DRF's `ListAPIView` with `JSONRenderer`, no authentication classes, no
  permission check beyond `AllowAny`, no throttling, no pagination class (so
  no envelope and no `COUNT(*)`): the response is a bare JSON array;
- the queryset of the platform's list (`apps.accounts.selectors.user_list`
  without an actor): live users (`is_deleted = false`) ordered by `id`, or
  with `?search=` the same full-text filter and rank ordering
  (`selectors.search_query`, `SearchRank`, then `id`), sliced to `?page_size=`
  rows (default 20, at most 100), so the rows and the main query are the
  platform's and the comparison is the platform's overhead, not the query's;
- the rows serialized by a DRF `ModelSerializer` of the same 13 fields as the
  platform's `UserOutput`, as a plain DRF service declares one. (Until
  2026-12 this view used the platform's own `UserOutput`: when the benchmark
  was written `UserOutput` was that ModelSerializer, and a later change made
  it the platform's faster `OutputSerializer`, which moved this baseline with
  it. That stricter comparison is still served, at `/bench/users-platform-serializer`,
  and printed beside the acceptance one.)
- the tenant's schema set on the connection by name with
  `connection.set_schema()` (from BENCH_REFERENCE_SCHEMA, which `identity.py`
  passes to gunicorn): no tenant lookup by host, no tenant cache. The
  platform's database backend issues `SET search_path` only when the path
  changes, which it does not between these requests and the platform's own
  for the same tenant.

They run in `bench.wsgi`'s reference handler, so none of the platform's
middleware runs (no request context or access log, no tenant resolution, no
sessions, CSRF, auth or gateway rate limit).
"""

from __future__ import annotations

import os
from typing import Any

from django.contrib.postgres.search import SearchRank
from django.db.models import F, QuerySet
from django.urls import path
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import User
from apps.accounts.selectors import search_query
from apps.accounts.serializers import UserOutput
from apps.core.tenancy import tenant_connection

SCHEMA_ENV = "BENCH_REFERENCE_SCHEMA"
MAX_PAGE_SIZE = 100


def _page_size(raw: str | None) -> int:
    try:
        return max(1, min(MAX_PAGE_SIZE, int(raw or 20)))
    except ValueError:
        return 20


class PlainUserSerializer(serializers.ModelSerializer[User]):
    """What a plain DRF service declares: a ModelSerializer of UserOutput's fields."""

    class Meta:
        model = User
        fields = UserOutput.sources()
        read_only_fields = fields


class ReferenceUserList(ListAPIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    throttle_classes = []
    pagination_class = None
    serializer_class: type[serializers.BaseSerializer[User]] = PlainUserSerializer

    def get_queryset(self) -> QuerySet[User]:
        params = self.request.query_params
        queryset = User.objects.filter(is_deleted=False)
        text = params.get("search")
        if text:
            query = search_query(text)
            if query is None:
                return queryset.none()
            queryset = (
                queryset.filter(search_vector=query)
                .annotate(rank=SearchRank(F("search_vector"), query))
                .order_by("-rank", "id")
            )
        else:
            queryset = queryset.order_by("id")
        return queryset[: _page_size(params.get("page_size"))]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        schema = os.environ.get(SCHEMA_ENV)
        if not schema:
            return Response({"detail": f"{SCHEMA_ENV} is not set"}, status=503)
        tenant_connection().set_schema(schema)
        return super().list(request, *args, **kwargs)


class ReferenceUserListPlatformSerializer(ReferenceUserList):
    """The same view with the platform's own output serializer (the stricter comparison)."""

    serializer_class = UserOutput


urlpatterns = [
    path("bench/users", ReferenceUserList.as_view(), name="bench-users"),
    path(
        "bench/users-platform-serializer",
        ReferenceUserListPlatformSerializer.as_view(),
        name="bench-users-platform-serializer",
    ),
]
