from django.urls import path

from apps.invitations import apis

urlpatterns = [
    path("invitations", apis.InvitationsApi.as_view(), name="invitations"),
    path("invitations/accept", apis.InvitationAcceptApi.as_view(), name="invitation-accept"),
    path(
        "invitations/<int:invitation_id>/resend",
        apis.InvitationResendApi.as_view(),
        name="invitation-resend",
    ),
    path(
        "invitations/<int:invitation_id>/revoke",
        apis.InvitationRevokeApi.as_view(),
        name="invitation-revoke",
    ),
    path("auth/signup", apis.SignupApi.as_view(), name="auth-signup"),
    path("auth/email/verify", apis.EmailVerifyApi.as_view(), name="auth-email-verify"),
]
