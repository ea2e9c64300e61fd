from django.urls import path

from apps.sso import apis

urlpatterns = [
    path("identity-providers", apis.IdentityProvidersApi.as_view(), name="identity-providers"),
    path(
        "identity-providers/<int:provider_id>",
        apis.IdentityProviderDetailApi.as_view(),
        name="identity-provider",
    ),
    path(
        "auth/oidc/<slug:provider>/authorize", apis.OidcAuthorizeApi.as_view(), name="sso-authorize"
    ),
    path("auth/oidc/<slug:provider>/callback", apis.OidcCallbackApi.as_view(), name="sso-callback"),
    path("auth/oidc/exchange", apis.OidcExchangeApi.as_view(), name="sso-exchange"),
]
