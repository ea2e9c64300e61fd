from django.urls import path

from apps.accounts.apis import auth, users

auth_urlpatterns = [
    path("auth/login", auth.LoginApi.as_view(), name="auth-login"),
    path("auth/refresh", auth.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", auth.LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all", auth.LogoutAllApi.as_view(), name="auth-logout-all"),
    path("auth/password/change", auth.PasswordChangeApi.as_view(), name="auth-password-change"),
    path("auth/password/reset", auth.PasswordResetApi.as_view(), name="auth-password-reset"),
    path(
        "auth/password/reset/confirm",
        auth.PasswordResetConfirmApi.as_view(),
        name="auth-password-reset-confirm",
    ),
    path("auth/email/confirm", auth.EmailConfirmApi.as_view(), name="auth-email-confirm"),
    path("auth/sessions", auth.SessionsApi.as_view(), name="auth-sessions"),
    path("auth/sessions/<uuid:session_id>", auth.SessionDetailApi.as_view(), name="auth-session"),
]

users_urlpatterns = [
    path("users", users.UsersApi.as_view(), name="users"),
    path("users/me", users.UserMeApi.as_view(), name="users-me"),
    path("users/<int:user_id>", users.UserDetailApi.as_view(), name="user"),
    path("users/<int:user_id>/restore", users.UserRestoreApi.as_view(), name="user-restore"),
]
