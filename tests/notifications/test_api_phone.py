"""The phone number SMS goes to: on the profile (PATCH /users/me) and for managers
(PATCH /users/{id}), E.164, 422 on phone_number otherwise."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.accounts.models import User

ME = "/api/v1/users/me"


@pytest.fixture
def member_token(api_a, member_a) -> str:
    return str(api_a.login("member@alpha.test")["access_token"])


def _phone(tenant_a, user: User) -> str:
    with tenant_context(tenant_a.tenant):
        return User.objects.get(pk=user.pk).phone_number


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+14155552671", "+14155552671"),
        ("+44 20 7946-0958", "+442079460958"),
        ("+1 (415) 555.2671", "+14155552671"),
    ],
)
def test_a_member_sets_their_number_in_e164(
    api_a, member_token, member_a, tenant_a, typed, stored
) -> None:
    response = api_a.call("patch", ME, {"phone_number": typed}, token=member_token)

    assert response.status_code == 200
    assert response.json()["data"]["phone_number"] == stored
    assert _phone(tenant_a, member_a) == stored
    # The cached identity behind GET /users/me shows it too.
    assert api_a.call("get", ME, token=member_token).json()["data"]["phone_number"] == stored


@pytest.mark.django_db
def test_an_empty_number_clears_it(api_a, member_token, member_a, tenant_a) -> None:
    api_a.call("patch", ME, {"phone_number": "+14155552671"}, token=member_token)

    response = api_a.call("patch", ME, {"phone_number": ""}, token=member_token)

    assert response.status_code == 200 and response.json()["data"]["phone_number"] == ""
    assert _phone(tenant_a, member_a) == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "typed",
    ["4155552671", "+0155552671", "+1415555267112345", "+1 415 CALL ME", "+12", "x" * 40, None],
)
def test_anything_else_is_422_on_phone_number_and_unchanged(
    api_a, member_token, member_a, tenant_a, typed
) -> None:
    api_a.call("patch", ME, {"phone_number": "+14155552671"}, token=member_token)

    response = api_a.call("patch", ME, {"phone_number": typed}, token=member_token)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert list(response.json()["error"]["details"]) == ["phone_number"]
    assert _phone(tenant_a, member_a) == "+14155552671"


@pytest.mark.django_db
def test_a_manager_sets_someones_number(api_a, owner_token, member_a, tenant_a) -> None:
    good = api_a.call(
        "patch",
        f"/api/v1/users/{member_a.pk}",
        {"phone_number": "+33 1 23 45 67 89"},
        token=owner_token,
    )
    bad = api_a.call(
        "patch", f"/api/v1/users/{member_a.pk}", {"phone_number": "0123456789"}, token=owner_token
    )  # fmt: skip

    assert good.status_code == 200 and good.json()["data"]["phone_number"] == "+33123456789"
    assert bad.status_code == 422 and "phone_number" in bad.json()["error"]["details"]
    assert _phone(tenant_a, member_a) == "+33123456789"
