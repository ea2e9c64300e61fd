"""The stock stack's views (bench.settings_stock): what a DRF tutorial would write."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django_ratelimit.decorators import ratelimit
from rest_framework import generics, serializers
from rest_framework_simplejwt.views import TokenObtainPairView

from apps.accounts.models import User

# As high as the platform's API_RATE_LIMIT in the benchmark: counted, never refused.
_limited = ratelimit(key="ip", rate="100000000/m", block=True)


class UserSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = [
            "id", "email", "username", "full_name", "phone_number", "is_active", "is_staff",
            "is_superuser", "last_login", "created_at", "updated_at", "is_deleted", "deleted_at",
            "pending_email",
        ]  # fmt: skip


@method_decorator(_limited, name="get")
class MeView(generics.RetrieveAPIView[User]):
    serializer_class = UserSerializer

    def get_object(self) -> Any:
        return self.request.user


@method_decorator(_limited, name="get")
class UsersView(generics.ListAPIView[User]):
    serializer_class = UserSerializer
    queryset = User.objects.filter(is_deleted=False).order_by("id")


@method_decorator(_limited, name="post")
class LoginView(TokenObtainPairView):
    pass


def ping(request: HttpRequest) -> JsonResponse:
    """For the benchmark to know the server answers (a plain Django view)."""
    return JsonResponse({})
