from django.urls import path

from apps.mfa import apis

# On every host: one's own factors and the sign-in steps.
auth_urlpatterns = [
    path("auth/mfa/factors", apis.FactorsApi.as_view(), name="mfa-factors"),
    path("auth/mfa/factors/<uuid:factor_id>", apis.FactorDetailApi.as_view(), name="mfa-factor"),
    path(
        "auth/mfa/factors/<uuid:factor_id>/confirm",
        apis.FactorConfirmApi.as_view(),
        name="mfa-factor-confirm",
    ),
    path("auth/mfa/recovery-codes", apis.RecoveryCodesApi.as_view(), name="mfa-recovery-codes"),
    path("auth/mfa/verify", apis.VerifyApi.as_view(), name="mfa-verify"),
    path("auth/mfa/enrol", apis.EnrolApi.as_view(), name="mfa-enrol"),
    path("auth/mfa/enrol/confirm", apis.EnrolConfirmApi.as_view(), name="mfa-enrol-confirm"),
]

# A tenant's host: its user managers reset a user's MFA.
urlpatterns = [
    *auth_urlpatterns,
    path("users/<int:user_id>/mfa", apis.UserMfaResetApi.as_view(), name="mfa-user-reset"),
]
