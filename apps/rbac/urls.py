from django.urls import path

from apps.rbac import apis

urlpatterns = [
    path("permissions", apis.PermissionsApi.as_view(), name="permissions"),
    path("roles", apis.RolesApi.as_view(), name="roles"),
    path("roles/<int:role_id>", apis.RoleDetailApi.as_view(), name="role"),
    path("users/me/permissions", apis.MyPermissionsApi.as_view(), name="users-me-permissions"),
    path("users/<int:user_id>/roles", apis.UserRolesApi.as_view(), name="user-roles"),
    path(
        "users/<int:user_id>/roles/<int:assignment_id>",
        apis.UserRoleDetailApi.as_view(),
        name="user-role",
    ),
]
