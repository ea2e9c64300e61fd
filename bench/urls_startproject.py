"""startproject's URLconf (the admin) plus the bare `JsonResponse` view."""

from django.contrib import admin
from django.urls import path

from bench.urls_bare import bare_info

urlpatterns = [
    path("admin/", admin.site.urls),
    path("bench/bare", bare_info, name="bench-bare"),
]
