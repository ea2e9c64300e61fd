"""GET/POST /api/v1/notifications/devices and DELETE .../devices/{id}: push subscriptions."""

from __future__ import annotations

import base64
import os

import pytest
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.notifications.models import DeviceSubscription

DEVICES = "/api/v1/notifications/devices"
ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc123:APA91b-device-one"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def keys() -> dict[str, str]:
    return {"p256dh": b64url(b"\x04" + os.urandom(64)), "auth": b64url(os.urandom(16))}


def webpush(endpoint: str = ENDPOINT, **extra) -> dict:
    return {"kind": "webpush", "endpoint": endpoint, "keys": keys(), **extra}


@pytest.fixture
def member_token(api_a, member_a) -> str:
    return str(api_a.login("member@alpha.test")["access_token"])


def _devices(tenant_a) -> list[tuple[int, str]]:
    with tenant_context(tenant_a.tenant):
        return list(DeviceSubscription.objects.values_list("user_id", "endpoint").order_by("id"))


@pytest.mark.django_db
def test_register_list_and_delete(api_a, member_token, member_a, tenant_a) -> None:
    body = webpush(user_agent="Firefox 140")

    created = api_a.call("post", DEVICES, body, token=member_token)
    listed = api_a.call("get", DEVICES, token=member_token)

    assert created.status_code == 201
    device = created.json()["data"]
    assert device["kind"] == "webpush" and device["endpoint"] == ENDPOINT
    assert device["user_agent"] == "Firefox 140" and "keys" not in device
    assert listed.status_code == 200 and listed.json()["data"] == [device]
    with tenant_context(tenant_a.tenant):
        assert DeviceSubscription.objects.get(pk=device["id"]).keys == body["keys"]

    deleted = api_a.call("delete", f"{DEVICES}/{device['id']}", token=member_token)
    again = api_a.call("delete", f"{DEVICES}/{device['id']}", token=member_token)

    assert deleted.status_code == 204 and again.status_code == 404
    assert _devices(tenant_a) == []


@pytest.mark.django_db
def test_registering_again_is_idempotent_and_refreshes_the_keys(
    api_a, member_token, member_a, tenant_a
) -> None:
    first = api_a.call("post", DEVICES, webpush(), token=member_token)
    newer = webpush()
    second = api_a.call("post", DEVICES, newer, token=member_token)

    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["data"]["id"] == first.json()["data"]["id"]
    assert _devices(tenant_a) == [(member_a.pk, ENDPOINT)]
    with tenant_context(tenant_a.tenant):
        assert DeviceSubscription.objects.get().keys == newer["keys"]


@pytest.mark.django_db
def test_the_user_agent_defaults_to_the_requests(api_a, member_token) -> None:
    response = api_a.call(
        "post", DEVICES, webpush(), token=member_token, HTTP_USER_AGENT="Chrome/140"
    )

    assert response.json()["data"]["user_agent"] == "Chrome/140"


@pytest.mark.django_db
def test_an_endpoint_moves_to_whoever_registers_it_last(
    api_a, member_token, member_a, tenant_a, person
) -> None:
    # A shared browser: the member signs out, someone else signs in on it.
    other = person("other")
    other_token = api_a.login("other@alpha.test")["access_token"]
    api_a.call("post", DEVICES, webpush(), token=member_token)

    response = api_a.call("post", DEVICES, webpush(), token=other_token)

    assert response.status_code == 201
    assert _devices(tenant_a) == [(other.pk, ENDPOINT)]
    assert api_a.call("get", DEVICES, token=member_token).json()["data"] == []


@pytest.mark.django_db
def test_fcm_tokens(api_a, member_token) -> None:
    token = "dGVzdC10b2tlbg:APA91bH" + "x" * 140

    created = api_a.call("post", DEVICES, {"kind": "fcm", "endpoint": token}, token=member_token)
    with_keys = api_a.call(
        "post", DEVICES, {"kind": "fcm", "endpoint": token, "keys": keys()}, token=member_token
    )
    bad = api_a.call(
        "post", DEVICES, {"kind": "fcm", "endpoint": "not a token!"}, token=member_token
    )

    assert created.status_code == 201 and created.json()["data"]["kind"] == "fcm"
    assert with_keys.status_code == 422 and "keys" in with_keys.json()["error"]["details"]
    assert bad.status_code == 422 and "endpoint" in bad.json()["error"]["details"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "kind"),
        ({"kind": "carrier-pigeon", "endpoint": ENDPOINT}, "kind"),
        ({"kind": "webpush", "endpoint": ENDPOINT}, "keys"),
        ({"kind": "webpush", "endpoint": "http://fcm.googleapis.com/x", "keys": keys()}, "endpoint"),
        ({"kind": "webpush", "endpoint": "ftp://fcm.googleapis.com/x", "keys": keys()}, "endpoint"),
        ({"kind": "webpush", "endpoint": "not a url", "keys": keys()}, "endpoint"),
        ({"kind": "webpush", "endpoint": "https://10.0.0.5/push", "keys": keys()}, "endpoint"),
        ({"kind": "webpush", "endpoint": "https://internal.corp/push", "keys": keys()}, "endpoint"),
        ({"kind": "webpush", "endpoint": "https://u:p@fcm.googleapis.com/x", "keys": keys()}, "endpoint"),
        ({"kind": "webpush", "endpoint": "http://localhost:8080/push", "keys": keys()}, "endpoint"),
        ({"kind": "webpush", "endpoint": "https://evilfcm.googleapis.com.evil.test/x", "keys": keys()}, "endpoint"),
        (webpush(keys={"p256dh": keys()["p256dh"]}), "keys"),
        (webpush(keys={"p256dh": "not+base64/url", "auth": keys()["auth"]}), "keys"),
        (webpush(keys={"p256dh": b64url(b"\x05" + os.urandom(64)), "auth": keys()["auth"]}), "keys"),
        (webpush(keys={"p256dh": keys()["p256dh"], "auth": b64url(os.urandom(8))}), "keys"),
        (webpush(keys={**keys(), "extra": "x"}), "keys"),
        (webpush(colour="blue"), "colour"),
        (webpush(user_agent="x" * 301), "user_agent"),
    ],
)  # fmt: skip
def test_bad_subscriptions_are_422_and_nothing_stored(
    api_a, member_token, tenant_a, body, field
) -> None:
    response = api_a.call("post", DEVICES, body, token=member_token)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert field in response.json()["error"]["details"]
    assert _devices(tenant_a) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "endpoint",
    [
        # A Google host to urlsplit, 127.0.0.1 / the cloud metadata service to urllib3,
        # which requests (and so pywebpush) connects with.
        "https://127.0.0.1\\.fcm.googleapis.com/x",
        "https://169.254.169.254\\.fcm.googleapis.com/x",
        "https://127.0.0.1\t.fcm.googleapis.com/x",
        "https://127.0.0.1%5C.fcm.googleapis.com/x",
    ],
)
def test_endpoints_the_http_client_reads_differently_are_422(
    api_a, member_token, tenant_a, endpoint
) -> None:
    response = api_a.call("post", DEVICES, webpush(endpoint), token=member_token)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert "endpoint" in response.json()["error"]["details"]
    assert _devices(tenant_a) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "endpoint",
    [
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
        "https://web.push.apple.com/QGuQyavXutnMH",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAA",
    ],
)
def test_the_browsers_push_services_are_accepted(api_a, member_token, endpoint) -> None:
    assert api_a.call("post", DEVICES, webpush(endpoint), token=member_token).status_code == 201


@pytest.mark.django_db
def test_localhost_over_http_only_when_insecure_endpoints_are_allowed(api_a, member_token) -> None:
    local = webpush("http://127.0.0.1:8090/push/1")

    with override_settings(NOTIFICATION_ALLOW_INSECURE_PUSH_ENDPOINTS=True):
        allowed = api_a.call("post", DEVICES, local, token=member_token)
    with override_settings(NOTIFICATION_ALLOW_INSECURE_PUSH_ENDPOINTS=False):
        refused = api_a.call(
            "post", DEVICES, webpush("http://127.0.0.1:8090/push/2"), token=member_token
        )

    assert allowed.status_code == 201
    assert refused.status_code == 422


@pytest.mark.django_db
def test_the_push_host_list_is_a_setting(api_a, member_token) -> None:
    with override_settings(NOTIFICATION_WEBPUSH_HOSTS=("push.example.test",)):
        ours = api_a.call(
            "post", DEVICES, webpush("https://a.push.example.test/1"), token=member_token
        )
        google = api_a.call("post", DEVICES, webpush(), token=member_token)
    with override_settings(NOTIFICATION_WEBPUSH_HOSTS=None):
        anywhere = api_a.call(
            "post", DEVICES, webpush("https://push.corp.test/1"), token=member_token
        )

    assert ours.status_code == 201 and google.status_code == 422 and anywhere.status_code == 201


@pytest.mark.django_db
def test_someone_elses_device_is_not_found(api_a, member_token, tenant_a, person) -> None:
    person("other")
    other_token = api_a.login("other@alpha.test")["access_token"]
    theirs = api_a.call("post", DEVICES, webpush(), token=other_token).json()["data"]["id"]

    listed = api_a.call("get", DEVICES, token=member_token)
    deleted = api_a.call("delete", f"{DEVICES}/{theirs}", token=member_token)

    assert listed.json()["data"] == []
    assert deleted.status_code == 404
    assert len(_devices(tenant_a)) == 1


@pytest.mark.django_db
def test_anonymous_is_401(api_a) -> None:
    assert api_a.call("get", DEVICES).status_code == 401
    assert api_a.call("post", DEVICES, webpush()).status_code == 401
    assert api_a.call("delete", f"{DEVICES}/1").status_code == 401
