"""Claims served by the provider's UserInfo endpoint only (OIDC Core 5.4), as a certified
provider does by default: the ID token carries `sub`, UserInfo the e-mail and profile."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.sso.models import ExternalIdentity
from tests.accounts.factories import make_user
from tests.sso.conftest import counts, sso_failures

pytestmark = pytest.mark.django_db


def test_claims_missing_from_the_id_token_are_read_from_userinfo(
    tenant_a, op, make_provider, sign_in
):
    # given a provider whose ID token carries only `sub`
    op.switches.claims_in_userinfo_only = True
    make_provider(jit_enabled=True)
    # when a new user signs in
    result = sign_in.run()
    # then they are provisioned from UserInfo's claims, asked once with the access token
    assert set(result) == {"code"}, result
    assert sign_in.exchange(result["code"]).status_code == 200
    assert op.requests_seen["/userinfo"] == 1
    with tenant_context(tenant_a.tenant):
        user = User.objects.get(email="pat@corp.test")
        assert user.full_name == "Pat Example" and user.username == "pat"
        assert ExternalIdentity.objects.filter(user=user, subject="op-user-1").exists()


def test_userinfo_of_another_subject_is_refused_and_creates_nothing(
    tenant_a, op, make_provider, sign_in
):
    op.switches.claims_in_userinfo_only = True
    op.switches.userinfo_claims = {**op.claims, "sub": "someone-else"}
    make_provider(jit_enabled=True)
    before = counts(tenant_a)

    assert sign_in.run() == {"error": "userinfo_subject_mismatch"}

    assert counts(tenant_a) == before
    assert sso_failures(tenant_a)[-1]["reason"] == "userinfo_subject_mismatch"


def test_an_id_token_with_every_claim_costs_no_userinfo_request(op, make_provider, sign_in):
    make_provider(jit_enabled=True)
    assert "code" in sign_in.run()
    assert "/userinfo" not in op.requests_seen


def test_userinfo_does_not_vouch_for_an_address_it_did_not_give(
    tenant_a, op, make_provider, sign_in
):
    # given an ID token with an address but no email_verified, and a UserInfo answer
    # that verifies another address
    op.claims = {"sub": "op-user-1", "email": "pat@corp.test", "name": "Pat Example"}
    op.switches.userinfo_claims = {
        "sub": "op-user-1",
        "email": "other@corp.test",
        "email_verified": True,
    }
    make_provider(allow_email_linking=True, jit_enabled=True)
    with tenant_context(tenant_a.tenant):
        make_user(email="pat@corp.test", username="pat-local")
    # when they sign in, then the existing account is not linked on UserInfo's word
    assert sign_in.run() == {"error": "account_not_linked"}
    assert op.requests_seen["/userinfo"] == 1


def test_a_verified_address_from_userinfo_links_when_the_tenant_allows_it(
    tenant_a, op, make_provider, sign_in
):
    op.switches.claims_in_userinfo_only = True
    make_provider(allow_email_linking=True)
    with tenant_context(tenant_a.tenant):
        user = make_user(email="pat@corp.test", username="pat-local")
    assert sign_in.exchange(sign_in.run()["code"]).status_code == 200
    with tenant_context(tenant_a.tenant):
        assert ExternalIdentity.objects.get(subject="op-user-1").user_id == user.pk


def test_userinfo_failing_fails_the_sign_in_and_creates_nothing(
    tenant_a, op, make_provider, sign_in
):
    op.switches.claims_in_userinfo_only = True
    op.switches.userinfo_status = 503
    make_provider(jit_enabled=True)
    before = counts(tenant_a)

    assert sign_in.run() == {"error": "userinfo_failed"}

    assert counts(tenant_a) == before
    assert sso_failures(tenant_a)[-1] == {
        "provider": "corp",
        "reason": "userinfo_failed",
        "detail": "HTTP 503",
    }
