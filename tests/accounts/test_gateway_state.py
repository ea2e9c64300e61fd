"""The gateway's one typed object on the request: what it holds, and who reads it."""

from __future__ import annotations

import pytest

from apps.core.gateway import GatewayState, gateway_state

OLD_PRIVATE_ATTRIBUTES = (
    "_gateway",
    "_bearer_api",
    "_bearer_result",
    "_bearer_error",
    "_rbac_values",
    "_rbac_grants",
)


@pytest.mark.django_db
def test_a_bearer_request_carries_one_gateway_state(api_a, member_a, settings) -> None:
    settings.API_RATE_LIMIT = "50/m"
    pair = api_a.login("member@alpha.test")
    response = api_a.call("get", "/api/v1/users/me", token=pair["access_token"])
    assert response.status_code == 200
    request = response.wsgi_request
    state = gateway_state(request)
    assert isinstance(state, GatewayState)
    assert state.identity.client == f"user:{member_a.pk}"
    assert state.redis_available
    assert state.rate_limit is not None and state.rate_limit.limit == 50
    # The token's user and session states and the user's grants, read in the one round trip.
    assert set(state.values) == set(state.identity.read_keys) and len(state.values) == 4
    assert not [name for name in OLD_PRIVATE_ATTRIBUTES if name in vars(request)]


@pytest.mark.django_db
def test_the_token_is_decoded_once_per_request(api_a, member_a, monkeypatch) -> None:
    """DRF's authentication takes the claims the gateway decoded."""
    from apps.accounts import authentication

    pair = api_a.login("member@alpha.test")
    decoded: list[str] = []
    original = authentication.access_token_decode

    def counting(raw: str):
        decoded.append(raw)
        return original(raw)

    monkeypatch.setattr(authentication, "access_token_decode", counting)
    assert api_a.call("get", "/api/v1/users/me", token=pair["access_token"]).status_code == 200
    assert decoded == [pair["access_token"]]


@pytest.mark.django_db
def test_a_token_that_does_not_decode_counts_against_the_address(api_a, tenant_a) -> None:
    response = api_a.call("get", "/api/v1/users/me", token="not-a-token")
    assert response.status_code == 401
    state = gateway_state(response.wsgi_request)
    assert state is not None and state.identity.client.startswith("ip:")
    assert state.identity.credentials is None


@pytest.mark.django_db
def test_paths_the_gateway_does_not_cover_have_no_state(api_a, tenant_a) -> None:
    response = api_a.client.get("/health/live", HTTP_HOST=api_a.host)
    assert response.status_code == 200
    assert gateway_state(response.wsgi_request) is None
