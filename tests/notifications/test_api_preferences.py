"""GET/PUT /api/v1/notifications/preferences: every type times every channel; all or nothing."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.notifications.models import Channel, Preference
from apps.notifications.types import NOTIFICATION_TYPES

PREFS = "/api/v1/notifications/preferences"


@pytest.fixture
def member_token(api_a, member_a) -> str:
    return str(api_a.login("member@alpha.test")["access_token"])


def _cells(response) -> dict[tuple[str, str], dict]:
    return {(c["type"], c["channel"]): c for c in response.json()["data"]["preferences"]}


def _stored(tenant_a, user) -> dict[tuple[str, str], bool]:
    with tenant_context(tenant_a.tenant):
        return {(p.type, p.channel): p.enabled for p in Preference.objects.filter(user_id=user.pk)}


@pytest.mark.django_db
def test_the_matrix_covers_every_type_and_channel_on_by_default(api_a, member_token) -> None:
    response = api_a.call("get", PREFS, token=member_token)

    assert response.status_code == 200
    data = response.json()["data"]
    cells = _cells(response)
    assert set(cells) == {(t, c) for t in NOTIFICATION_TYPES for c in Channel.values}
    assert all(cell["enabled"] for cell in cells.values())
    assert cells[("security.password_changed", "email")]["locked"] is True
    assert cells[("announcement", "email")]["locked"] is False
    assert data["channels"] == ["in_app", "email", "sms", "push"]
    described = {t["type"]: t for t in data["types"]}
    assert described["security.new_sign_in"]["security"] is True
    assert described["welcome"]["description"]


@pytest.mark.django_db
def test_put_turns_channels_off_and_on_and_keeps_the_rest(
    api_a, member_token, member_a, tenant_a
) -> None:
    first = api_a.call(
        "put",
        PREFS,
        {
            "preferences": [
                {"type": "announcement", "channel": "email", "enabled": False},
                {"type": "announcement", "channel": "sms", "enabled": False},
                {"type": "welcome", "channel": "push", "enabled": False},
            ]
        },
        token=member_token,
    )
    second = api_a.call(
        "put",
        PREFS,
        {"preferences": [{"type": "announcement", "channel": "sms", "enabled": True}]},
        token=member_token,
    )

    assert first.status_code == 200 and second.status_code == 200
    cells = _cells(second)
    assert cells[("announcement", "email")]["enabled"] is False
    assert cells[("announcement", "sms")]["enabled"] is True
    assert cells[("welcome", "push")]["enabled"] is False
    assert cells[("welcome", "email")]["enabled"] is True
    assert _cells(api_a.call("get", PREFS, token=member_token)) == cells
    assert _stored(tenant_a, member_a) == {
        ("announcement", "email"): False,
        ("announcement", "sms"): True,
        ("welcome", "push"): False,
    }


@pytest.mark.django_db
def test_a_security_notice_cannot_be_turned_off(api_a, member_token, member_a, tenant_a) -> None:
    response = api_a.call(
        "put",
        PREFS,
        {
            "preferences": [
                {"type": "announcement", "channel": "email", "enabled": False},
                {"type": "security.password_changed", "channel": "email", "enabled": False},
            ]
        },
        token=member_token,
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["preferences"][0] == {}
    assert error["details"]["preferences"][1] == {
        "enabled": ["Security notices cannot be turned off."]
    }
    assert _stored(tenant_a, member_a) == {}  # nothing saved, not even the valid entry


@pytest.mark.django_db
def test_a_security_notice_left_on_is_accepted_and_stays_locked(api_a, member_token) -> None:
    response = api_a.call(
        "put",
        PREFS,
        {"preferences": [{"type": "security.new_sign_in", "channel": "sms", "enabled": True}]},
        token=member_token,
    )

    assert response.status_code == 200
    cell = _cells(response)[("security.new_sign_in", "sms")]
    assert cell == {
        "type": "security.new_sign_in",
        "channel": "sms",
        "enabled": True,
        "locked": True,
    }


@pytest.mark.django_db
def test_a_stored_off_for_a_security_type_is_ignored(
    api_a, member_token, member_a, tenant_a
) -> None:
    # Given a row written by hand (the admin, an old release)
    with tenant_context(tenant_a.tenant):
        Preference.objects.create(
            user=member_a, type="security.password_changed", channel="email", enabled=False
        )

    cells = _cells(api_a.call("get", PREFS, token=member_token))

    assert cells[("security.password_changed", "email")]["enabled"] is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "details"),
    [
        (
            {"preferences": [{"type": "no.such", "channel": "email", "enabled": False}]},
            {"preferences": [{"type": ["Unknown notification type."]}]},
        ),
        (
            {"preferences": [{"type": "welcome", "channel": "pigeon", "enabled": False}]},
            {"preferences": [{"channel": ["Unknown channel."]}]},
        ),
        (
            {
                "preferences": [
                    {"type": "welcome", "channel": "sms", "enabled": False},
                    {"type": "welcome", "channel": "sms", "enabled": True},
                ]
            },
            {"preferences": [{}, {"non_field_errors": ["Given twice."]}]},
        ),
    ],
)
def test_unknown_types_channels_and_duplicates_are_422_and_nothing_saved(
    api_a, member_token, member_a, tenant_a, body, details
) -> None:
    response = api_a.call("put", PREFS, body, token=member_token)

    assert response.status_code == 422
    assert response.json()["error"]["details"] == details
    assert _stored(tenant_a, member_a) == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"preferences": []},
        {"preferences": "all"},
        {"preferences": [{"type": "welcome", "channel": "sms"}]},
        {"preferences": [{"type": "welcome", "channel": "sms", "enabled": "perhaps"}]},
        {"preferences": [{"type": "welcome", "channel": "sms", "enabled": False, "x": 1}]},
        {"preferences": [], "extra": True},
    ],
)
def test_malformed_bodies_are_422(api_a, member_token, member_a, tenant_a, body) -> None:
    response = api_a.call("put", PREFS, body, token=member_token)

    assert response.status_code == 422
    assert response.json()["error"]["details"]
    assert _stored(tenant_a, member_a) == {}


@pytest.mark.django_db
def test_preferences_are_per_user(api_a, member_token, tenant_a, person) -> None:
    other = person("other")
    other_token = api_a.login("other@alpha.test")["access_token"]
    api_a.call(
        "put",
        PREFS,
        {"preferences": [{"type": "welcome", "channel": "email", "enabled": False}]},
        token=other_token,
    )

    cells = _cells(api_a.call("get", PREFS, token=member_token))

    assert cells[("welcome", "email")]["enabled"] is True
    assert other.pk


@pytest.mark.django_db
def test_anonymous_is_401(api_a) -> None:
    assert api_a.call("get", PREFS).status_code == 401
    assert api_a.call("put", PREFS, {"preferences": []}).status_code == 401
