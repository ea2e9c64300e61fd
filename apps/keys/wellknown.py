"""/.well-known/jwks.json and /.well-known/openid-configuration, on every host.

Outside the API envelope (like /health) and without authentication: what a
service needs to verify platform tokens offline. The issuer is the configured
one on every host; the `tenant` claim names the schema, and the discovery
document of a tenant host says which (`tenant`), so a verifier pins both.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from rest_framework_simplejwt.settings import api_settings

from apps.core.tenancy import current_schema
from apps.keys import keyring
from apps.keys.crypto import ALGORITHM

CLAIMS = ("sub", "tenant", "sid", "jti", "type", "iat", "exp", "iss", "aud", "email", "roles")


def _cacheable(response: JsonResponse) -> JsonResponse:
    response["Cache-Control"] = f"public, max-age={settings.WELL_KNOWN_MAX_AGE_SECONDS}"
    return response


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    return _cacheable(JsonResponse(keyring.jwks()))


@require_GET
def openid_configuration(request: HttpRequest) -> JsonResponse:
    base = f"{settings.PLATFORM_URL_SCHEME}://{request.get_host()}"
    document = {
        "issuer": api_settings.ISSUER,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "subject_types_supported": ["public"],
        "claims_supported": list(CLAIMS),
        # Not OpenID Connect: what a verifier must also check in our tokens.
        "audience": api_settings.AUDIENCE,
        "tenant": current_schema(),
    }
    return _cacheable(JsonResponse(document))
