"""Signing in through a real OpenID provider on loopback (tests/sso/op.py)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.organizations.models import Membership
from apps.rbac.models import Role, RoleAssignment
from apps.sso.models import ExternalIdentity
from tests.accounts.factories import make_user
from tests.organizations.factories import org_create
from tests.sso.conftest import CLIENT_REDIRECT, counts, sso_failures

pytestmark = pytest.mark.django_db


def test_sign_in_end_to_end_gives_a_working_token_pair(tenant_a, api_a, op, make_provider, sign_in):
    # given a user the tenant already linked to the provider's subject
    provider = make_provider()
    with tenant_context(tenant_a.tenant):
        user = make_user(email="pat@corp.test", username="pat")
        ExternalIdentity.objects.create(
            provider=provider, issuer=op.issuer, subject="op-user-1", user=user
        )
    # when the browser goes through the provider and the client trades the code
    result = sign_in.run()
    assert set(result) == {"code"}  # no tokens in the URL
    exchanged = sign_in.exchange(result["code"])
    # then the pair is ours and works
    assert exchanged.status_code == 200, exchanged.content
    pair = exchanged.json()["data"]
    me = api_a.call("get", "/api/v1/users/me", token=pair["access_token"])
    assert me.status_code == 200
    assert me.json()["data"]["email"] == "pat@corp.test"
    refreshed = api_a.call("post", "/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    # and the provider saw one code exchange with PKCE (it refuses one without)
    assert op.requests_seen["/token"] == 1


def test_authorize_redirects_with_pkce_state_and_nonce(make_provider, sign_in):
    make_provider()
    started = sign_in.start()
    assert started.status_code == 302
    query = parse_qs(urlsplit(started["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"][0].endswith("/api/v1/auth/oidc/corp/callback")
    assert "openid" in query["scope"][0].split()


def test_jit_provisioning_applies_roles_and_organization(tenant_a, make_provider, sign_in):
    with tenant_context(tenant_a.tenant):
        role = Role.objects.create(name="SSO people", permissions=["users.view"])
        org = org_create("Engineering")
    make_provider(jit_enabled=True, jit_role_ids=[role.pk], jit_organization_id=org.pk)
    result = sign_in.run()
    assert sign_in.exchange(result["code"]).status_code == 200
    with tenant_context(tenant_a.tenant):
        user = User.objects.get(email="pat@corp.test")
        assert user.username == "pat" and user.full_name == "Pat Example"
        assert not user.has_usable_password()
        assert RoleAssignment.objects.filter(user=user, role=role).exists()
        assert Membership.objects.filter(user=user, organization=org).exists()
        assert ExternalIdentity.objects.filter(user=user, subject="op-user-1").exists()


def test_a_second_sign_in_finds_the_user_by_subject_even_if_the_email_changed(
    tenant_a, op, make_provider, sign_in
):
    make_provider(jit_enabled=True)
    assert sign_in.exchange(sign_in.run()["code"]).status_code == 200
    op.claims["email"] = "pat.new@corp.test"
    assert sign_in.exchange(sign_in.run()["code"]).status_code == 200
    with tenant_context(tenant_a.tenant):
        assert User.objects.filter(email__endswith="@corp.test").count() == 1


def test_same_email_without_verified_flag_is_not_linked(tenant_a, op, make_provider, sign_in):
    make_provider(allow_email_linking=True, jit_enabled=True)
    with tenant_context(tenant_a.tenant):
        make_user(email="pat@corp.test", username="pat-local")
    op.claims["email_verified"] = False
    before = counts(tenant_a)
    assert sign_in.run() == {"error": "account_not_linked"}
    assert counts(tenant_a) == before
    assert sso_failures(tenant_a)[-1]["reason"] == "account_not_linked"


def test_verified_email_is_linked_only_when_the_tenant_allows_it(tenant_a, make_provider, sign_in):
    provider = make_provider(allow_email_linking=False)
    with tenant_context(tenant_a.tenant):
        user = make_user(email="pat@corp.test", username="pat-local")
    assert sign_in.run() == {"error": "account_not_linked"}
    with tenant_context(tenant_a.tenant):
        provider.allow_email_linking = True
        provider.save()
    code = sign_in.run()["code"]
    assert sign_in.exchange(code).status_code == 200
    with tenant_context(tenant_a.tenant):
        assert ExternalIdentity.objects.get(subject="op-user-1").user_id == user.pk


def test_jit_off_and_no_user_creates_nothing(tenant_a, make_provider, sign_in):
    make_provider(jit_enabled=False)
    before = counts(tenant_a)
    assert sign_in.run() == {"error": "no_account"}
    assert counts(tenant_a) == before
    assert sso_failures(tenant_a)[-1]["reason"] == "no_account"


def test_email_domain_not_allowed(tenant_a, make_provider, sign_in):
    make_provider(jit_enabled=True, allowed_email_domains=["other.test"])
    before = counts(tenant_a)
    assert sign_in.run() == {"error": "email_domain_not_allowed"}
    assert counts(tenant_a) == before
    assert sso_failures(tenant_a)[-1]["reason"] == "email_domain_not_allowed"


@pytest.mark.parametrize(
    ("switch", "value", "detail"),
    [
        ("audience", "someone-else", "wrong audience"),
        ("expired", True, "expired"),
        ("bad_signature", True, "bad signature"),
        ("nonce", "not-the-nonce", "wrong nonce"),
    ],
)
def test_a_bad_id_token_is_refused_and_creates_nothing(
    tenant_a, op, make_provider, sign_in, switch, value, detail
):
    make_provider(jit_enabled=True)
    setattr(op.switches, switch, value)
    before = counts(tenant_a)
    assert sign_in.run() == {"error": "id_token_invalid"}
    assert counts(tenant_a) == before
    failure = sso_failures(tenant_a)[-1]
    assert failure == {"provider": "corp", "reason": "id_token_invalid", "detail": detail}


def test_a_rotated_key_is_fetched_once_on_its_unknown_kid(
    tenant_a, op, make_provider, sign_in, settings
):
    settings.SSO_JWKS_REFETCH_COOLDOWN_SECONDS = 0  # the client is made on first use, below
    make_provider(jit_enabled=True)
    assert "code" in sign_in.run()
    assert "code" in sign_in.run()
    assert op.requests_seen["/jwks"] == 1  # cached
    op.rotate()
    assert "code" in sign_in.run()
    assert op.requests_seen["/jwks"] == 2  # fetched again for the new kid


def test_an_unknown_kid_within_the_cooldown_is_refused_without_a_fetch(
    tenant_a, op, make_provider, sign_in
):
    make_provider(jit_enabled=True)
    assert "code" in sign_in.run()
    op.rotate()
    assert sign_in.run() == {"error": "id_token_invalid"}
    assert op.requests_seen["/jwks"] == 1


def test_provider_down_at_the_code_exchange(tenant_a, op, make_provider, sign_in):
    make_provider(jit_enabled=True)
    callback = sign_in.to_provider()
    op.stop()
    before = counts(tenant_a)
    done = sign_in.callback(callback)
    assert done.status_code == 302
    assert done["Location"] == f"{CLIENT_REDIRECT}?error=provider_unavailable"
    assert counts(tenant_a) == before
    assert sso_failures(tenant_a)[-1]["reason"] == "provider_unavailable"


def test_provider_refusing_sends_the_error_back(tenant_a, op, make_provider, sign_in):
    make_provider(jit_enabled=True)
    op.switches.deny = True
    assert sign_in.run() == {"error": "provider_denied"}
    assert sso_failures(tenant_a)[-1]["detail"] == "access_denied"


def test_state_replay_is_refused_in_the_envelope(tenant_a, make_provider, sign_in):
    make_provider(jit_enabled=True)
    callback = sign_in.to_provider()
    assert sign_in.callback(callback).status_code == 302
    before = counts(tenant_a)
    replayed = sign_in.callback(callback)
    assert replayed.status_code == 400
    assert replayed.json()["error"]["code"] == "SSO_STATE_INVALID"
    assert counts(tenant_a) == before
    assert sso_failures(tenant_a)[-1]["reason"] == "state_invalid"


def test_unknown_state_is_refused(tenant_a, make_provider, sign_in):
    make_provider()
    response = sign_in.api.client.get(
        "/api/v1/auth/oidc/corp/callback?code=x&state=forged", HTTP_HOST=sign_in.api.host
    )
    assert response.status_code == 400
    assert sso_failures(tenant_a)[-1]["reason"] == "state_invalid"


def test_provider_code_replay_is_refused_by_the_provider(tenant_a, make_provider, sign_in):
    # The same provider code under a fresh state: the provider will not honour it twice.
    make_provider(jit_enabled=True)
    first = sign_in.to_provider()
    assert sign_in.callback(first).status_code == 302
    second = sign_in.to_provider()
    stolen_code = parse_qs(urlsplit(first).query)["code"][0]
    fresh_state = parse_qs(urlsplit(second).query)["state"][0]
    done = sign_in.api.client.get(
        f"/api/v1/auth/oidc/corp/callback?code={stolen_code}&state={fresh_state}",
        HTTP_HOST=sign_in.api.host,
    )
    assert done["Location"] == f"{CLIENT_REDIRECT}?error=token_exchange_failed"


def test_exchange_code_is_single_use(tenant_a, make_provider, sign_in):
    make_provider(jit_enabled=True)
    code = sign_in.run()["code"]
    assert sign_in.exchange(code).status_code == 200
    replayed = sign_in.exchange(code)
    assert replayed.status_code == 401
    assert replayed.json()["error"]["code"] == "UNAUTHORIZED"
    assert sso_failures(tenant_a)[-1]["reason"] == "exchange_code_invalid"


def test_exchange_code_expires(tenant_a, make_provider, sign_in, settings):
    settings.SSO_EXCHANGE_CODE_SECONDS = 0
    make_provider(jit_enabled=True)
    assert sign_in.exchange(sign_in.run()["code"]).status_code == 401


def test_redirect_uri_not_allowed(tenant_a, make_provider, sign_in):
    make_provider()
    response = sign_in.start(redirect_uri="https://evil.example.test/steal")
    assert response.status_code == 422
    assert "redirect_uri" in response.json()["error"]["details"]
    assert sso_failures(tenant_a)[-1]["reason"] == "redirect_uri_not_allowed"


def test_unknown_or_disabled_provider_is_404(tenant_a, make_provider, sign_in):
    provider = make_provider()
    assert sign_in.start(slug="nope").status_code == 404
    with tenant_context(tenant_a.tenant):
        provider.enabled = False
        provider.save()
    assert sign_in.start().status_code == 404


def test_providers_are_per_tenant(tenant_b, make_provider, api_b):
    make_provider()
    response = api_b.client.get(
        "/api/v1/auth/oidc/corp/authorize",
        {"redirect_uri": CLIENT_REDIRECT},
        HTTP_HOST=api_b.host,
    )
    assert response.status_code == 404


def test_jit_falls_back_to_a_username_from_the_address_when_taken(tenant_a, make_provider, sign_in):
    make_provider(jit_enabled=True)
    with tenant_context(tenant_a.tenant):
        make_user(email="someone.else@alpha.test", username="pat")
    assert sign_in.exchange(sign_in.run()["code"]).status_code == 200
    with tenant_context(tenant_a.tenant):
        assert User.objects.get(email="pat@corp.test").username != "pat"


def test_cleanup_deletes_used_and_expired_records(tenant_a, make_provider, sign_in):
    from datetime import timedelta

    from django.utils import timezone

    from apps.sso.models import ExchangeCode, LoginState
    from apps.sso.services.signin import sso_records_cleanup

    make_provider(jit_enabled=True)
    sign_in.exchange(sign_in.run()["code"])  # a used state and a used code
    assert sign_in.start().status_code == 302  # a live state
    with tenant_context(tenant_a.tenant):
        assert sso_records_cleanup() == {"login_states": 1, "exchange_codes": 1}
        assert LoginState.objects.count() == 1 and not ExchangeCode.objects.exists()
        later = timezone.now() + timedelta(hours=1)
        assert sso_records_cleanup(now=later)["login_states"] == 1
