"""Providers against real servers the tests run: SMTP (aiosmtpd), a Twilio-style API and a
Web Push service (local HTTP); the circuit breaker with its state in Redis."""

from __future__ import annotations

import base64
import json
import os
import smtplib
from datetime import UTC, datetime, timedelta

import http_ece  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db.models import F
from django_redis import get_redis_connection
from py_vapid import Vapid  # type: ignore[import-untyped]

from apps.notifications.breaker import (
    breaker_namespace,
    breaker_reset,
    breaker_retry_at,
    breaker_state,
    provider_breaker,
)
from apps.notifications.delivery import delivery_send
from apps.notifications.inbox import webpush_endpoint_problem
from apps.notifications.models import Delivery, DeviceSubscription
from tests.accounts.factories import make_user
from tests.core.listener import counting_listener
from tests.notifications.factories import make_delivery, make_device

pytestmark = pytest.mark.django_db

TWILIO = "apps.notifications.channels.sms.TwilioSmsProvider"
WEBPUSH = "apps.notifications.channels.push.WebPushProvider"


def _delivery(user, channel: str, **kwargs) -> Delivery:
    return make_delivery(user, channel, **{"body": "Line one\nLine two & more", **kwargs})


# ------------------------------------------------------------------ e-mail


def test_email_is_rendered_as_text_and_html_through_django_mail(in_tenant_a) -> None:
    user = make_user(email="ada@alpha.test", full_name="Ada")
    delivery = _delivery(user, "email")

    assert delivery_send(delivery_id=delivery.pk).status == "sent"

    [message] = mail.outbox
    assert message.to == ["ada@alpha.test"] and message.subject == "Hello"
    assert message.body == "Line one\nLine two & more"
    [(html, mimetype)] = message.alternatives  # type: ignore[union-attr]
    assert mimetype == "text/html"
    assert "<p>Line one<br>Line two &amp; more</p>" in str(html)
    delivery.refresh_from_db()
    assert delivery.provider_message_id == message.extra_headers["Message-ID"]


def test_email_reaches_a_real_smtp_server(in_tenant_a, smtp_server, settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = smtp_server.host, smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    user = make_user(email="grace@alpha.test")
    delivery = _delivery(user, "email", title="Over the wire")

    assert delivery_send(delivery_id=delivery.pk).status == "sent"

    [(sender, recipients)] = smtp_server.envelopes
    assert recipients == ["grace@alpha.test"] and "no-reply@" in sender
    [received] = smtp_server.messages
    assert received["Subject"] == "Over the wire"
    assert [part.get_content_type() for part in received.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    text, html = (
        part.get_payload(decode=True).decode()
        for part in received.walk()
        if part.get_content_maintype() == "text"
    )
    assert text.replace("\r\n", "\n").strip() == "Line one\nLine two & more"
    assert "<p>Line one<br>Line two &amp; more</p>" in html
    delivery.refresh_from_db()
    assert delivery.provider_message_id == received["Message-ID"]


def test_each_message_has_its_own_mime_boundary_absent_from_its_parts() -> None:
    from apps.notifications.channels.email import build_email

    def boundary_of(text: str) -> tuple[str, bytes]:
        raw = build_email(to=["a@alpha.test"], subject="S", text=text, html=f"<p>{text}</p>")
        message = raw.message()
        return str(message.get_boundary()), message.as_bytes()

    first, raw_first = boundary_of("--=_ looks like a boundary")
    second, _ = boundary_of("--=_ looks like a boundary")
    assert first != second and len(first) >= 32
    # The boundary delimits the two parts, and nowhere else.
    assert raw_first.count(f"--{first}".encode()) == 3  # two openings, one closing


def test_an_smtp_server_that_is_down_is_a_transient_error(in_tenant_a, settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    delivery = _delivery(make_user(), "email")

    outcome = delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert outcome.status == "pending" and outcome.retry_in is not None
    assert delivery.attempts == 1 and delivery.next_attempt_at is not None
    assert "ConnectionRefused" in delivery.last_error


class RefusingBackend(LocmemBackend):
    def send_messages(self, messages):
        for message in messages:
            if any(to.startswith("refused") for to in message.to):
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"no such user")})
        return super().send_messages(messages)


def test_a_refused_recipient_fails_its_delivery_at_once(in_tenant_a, settings) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    delivery = _delivery(make_user(email="refused@alpha.test"), "email")

    outcome = delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert outcome.status == "failed" and outcome.retry_in is None
    assert delivery.attempts == 1 and delivery.next_attempt_at is None
    assert not mail.outbox


# ------------------------------------------------------------------ SMS


@pytest.fixture
def twilio(http_stub, settings):
    stub = http_stub()
    settings.NOTIFICATION_SMS_PROVIDER = TWILIO
    settings.TWILIO_BASE_URL = stub.url
    settings.TWILIO_ACCOUNT_SID = "AC0123"
    settings.TWILIO_AUTH_TOKEN = "secret-token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    return stub


def test_sms_is_posted_to_the_twilio_api(in_tenant_a, twilio) -> None:
    twilio.answer(201, {"sid": "SM123", "status": "queued"})
    user = make_user(phone_number="+14155550123")
    delivery = _delivery(user, "sms", title="Code", body="Your code is 42")

    assert delivery_send(delivery_id=delivery.pk).status == "sent"

    [request] = twilio.requests
    assert request.path == "/2010-04-01/Accounts/AC0123/Messages.json"
    assert request.basic_auth() == ("AC0123", "secret-token")
    assert request.form() == {
        "To": "+14155550123",
        "From": "+15005550006",
        "Body": "Code: Your code is 42",
    }
    delivery.refresh_from_db()
    assert (delivery.provider, delivery.provider_message_id) == ("twilio", "SM123")


def test_an_sms_5xx_is_retried_with_backoff(in_tenant_a, twilio) -> None:
    twilio.answer(503, {"message": "busy"})
    twilio.answer(201, {"sid": "SM2"})
    delivery = _delivery(make_user(phone_number="+14155550123"), "sms")

    first = delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert first.status == "pending" and first.retry_in is not None
    base = settings.NOTIFICATION_RETRY_BASE_SECONDS
    assert base <= first.retry_in <= base * 1.5
    assert delivery.attempts == 1 and "HTTP 503" in delivery.last_error
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=None)  # its time has come
    assert delivery_send(delivery_id=delivery.pk).status == "sent"
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.provider_message_id) == (2, "SM2")


def test_an_sms_400_fails_at_once(in_tenant_a, twilio) -> None:
    twilio.always(400, {"code": 21211, "message": "Invalid 'To' Phone Number"})
    delivery = _delivery(make_user(phone_number="+14155550123"), "sms")

    outcome = delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert outcome.status == "failed" and outcome.retry_in is None
    assert delivery.attempts == 1 and "21211 Invalid 'To' Phone Number" in delivery.last_error
    assert len(twilio.requests) == 1
    assert breaker_state("twilio") == "closed"  # the provider answered: not its failure


def test_transient_failures_end_in_failed_after_the_last_attempt(
    in_tenant_a, twilio, settings
) -> None:
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    settings.NOTIFICATION_BREAKER_FAIL_MAX = 10
    twilio.always(500)
    delivery = _delivery(make_user(phone_number="+14155550123"), "sms")

    outcomes = []
    for _ in range(3):
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=None)
        outcomes.append(delivery_send(delivery_id=delivery.pk).status)

    delivery.refresh_from_db()
    assert outcomes == ["pending", "pending", "failed"]
    assert delivery.attempts == 3 and delivery.status == "failed"
    assert delivery_send(delivery_id=delivery.pk).status == "failed"
    assert len(twilio.requests) == 3


def _breaker_opened_earlier(provider: str, *, seconds: float) -> None:
    """As if `seconds` had passed since the breaker opened (its stored opening moves back)."""
    opened_at = provider_breaker(provider)._state_storage.opened_at
    assert opened_at is not None
    get_redis_connection("default").set(
        f"{breaker_namespace(provider)}:pybreaker:opened_at",
        repr((opened_at - timedelta(seconds=seconds)).timestamp()),
    )


def test_a_failing_provider_opens_its_breaker_and_deliveries_wait_until_it_recovers(
    in_tenant_a, twilio, settings
) -> None:
    settings.NOTIFICATION_BREAKER_RESET_SECONDS = 1
    twilio.always(503)
    user = make_user(phone_number="+14155550123")
    deliveries = [_delivery(user, "sms", title=f"n{i}") for i in range(6)]

    # Five failures, one per delivery: the fifth opens the breaker.
    for delivery in deliveries[:5]:
        assert delivery_send(delivery_id=delivery.pk).status == "pending"
    redis = get_redis_connection("default")
    assert redis.get(f"{breaker_namespace('twilio')}:pybreaker:state") == b"open"

    # Open: the sixth is not attempted; it waits, pending, without spending an attempt.
    waiting = delivery_send(delivery_id=deliveries[5].pk)
    deliveries[5].refresh_from_db()
    assert len(twilio.requests) == 5
    assert waiting.status == "pending" and waiting.retry_in is not None
    assert deliveries[5].attempts == 0 and deliveries[5].next_attempt_at is not None
    assert "circuit breaker is open" in deliveries[5].last_error

    # The provider recovers; once the reset timeout has passed every delivery goes out.
    twilio.always(201, {"sid": "SMok"})
    _breaker_opened_earlier("twilio", seconds=max(waiting.retry_in, 1.1))
    Delivery.objects.filter(pk=deliveries[5].pk).update(
        next_attempt_at=F("next_attempt_at") - timedelta(seconds=max(waiting.retry_in, 1.1))
    )
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries[:5]]).update(next_attempt_at=None)
    outcomes = [delivery_send(delivery_id=d.pk).status for d in deliveries]

    assert outcomes == ["sent"] * 6
    assert breaker_state("twilio") == "closed"
    assert len(twilio.requests) == 11
    assert (
        sorted(
            Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).values_list(
                "attempts", flat=True
            )
        )
        == [1] + [2] * 5
    )


def test_an_open_breaker_waits_its_whole_reset_timeout_not_to_the_next_whole_second(
    settings,
) -> None:
    settings.NOTIFICATION_BREAKER_RESET_SECONDS = 1
    breaker_reset("twilio")
    storage = provider_breaker("twilio")._state_storage
    opened = datetime(2026, 12, 2, 12, 0, 0, 990000, tzinfo=UTC)

    storage.opened_at = opened
    storage.opened_at = opened - timedelta(seconds=5)  # an earlier opening does not win

    assert storage.opened_at == opened
    assert breaker_retry_at("twilio") == opened + timedelta(seconds=1)
    breaker_reset("twilio")


def test_an_sms_provider_url_on_this_machine_is_refused_unless_allowed(
    in_tenant_a, twilio, settings
) -> None:
    settings.NOTIFICATION_PROVIDER_ALLOW_PRIVATE_ADDRESSES = False
    delivery = _delivery(make_user(phone_number="+14155550123"), "sms")

    outcome = delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert twilio.requests == []
    assert outcome.status == "pending"  # a configuration every message fails alike
    assert "TWILIO_BASE_URL refused: Must be an https URL." in delivery.last_error
    assert "secret-token" not in delivery.last_error


def test_an_sms_provider_name_resolving_to_this_machine_is_refused_when_connecting(
    in_tenant_a, twilio, settings
) -> None:
    settings.NOTIFICATION_PROVIDER_ALLOW_PRIVATE_ADDRESSES = False
    delivery = _delivery(make_user(phone_number="+14155550123"), "sms")
    with counting_listener() as listener:
        settings.TWILIO_BASE_URL = f"https://localhost:{listener.port}"
        outcome = delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert listener.connections == 0
    assert outcome.status == "pending"
    assert "localhost leads to an address that is not allowed" in delivery.last_error


def test_a_user_without_a_phone_number_is_skipped_at_send_time(in_tenant_a, twilio) -> None:
    user = make_user(phone_number="+14155550123")
    delivery = _delivery(user, "sms")
    user.phone_number = ""
    user.save(update_fields=["phone_number"])

    assert delivery_send(delivery_id=delivery.pk).status == "skipped"
    assert twilio.requests == []


def test_the_console_sms_provider_writes_a_file(in_tenant_a, tmp_path, settings) -> None:
    settings.LOCAL_DIR = tmp_path
    delivery = _delivery(make_user(phone_number="+14155550123"), "sms", body="Hi")

    assert delivery_send(delivery_id=delivery.pk).status == "sent"

    [written] = (tmp_path / "sms").iterdir()
    assert json.loads(written.read_text())["to"] == "+14155550123"


# ------------------------------------------------------------------ Web Push


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def browser():
    """A browser's push subscription keys: a real P-256 key pair and auth secret."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = os.urandom(16)
    return {"private": private, "auth": auth, "keys": {"p256dh": _b64(public), "auth": _b64(auth)}}


@pytest.fixture
def push_service(http_stub, settings):
    vapid = Vapid()
    vapid.generate_keys()
    settings.NOTIFICATION_PUSH_PROVIDER = WEBPUSH
    settings.VAPID_PRIVATE_KEY = vapid.private_pem().decode()
    settings.VAPID_SUBJECT = "mailto:ops@example.com"
    # The stub push service below speaks http on 127.0.0.1, as in development.
    settings.NOTIFICATION_ALLOW_INSECURE_PUSH_ENDPOINTS = True
    stub = http_stub()
    return stub


def test_web_push_is_encrypted_for_the_device_and_signed_with_vapid(
    in_tenant_a, push_service, browser
) -> None:
    push_service.always(201)
    user = make_user()
    device = make_device(user, f"{push_service.url}/push/device-1", keys=browser["keys"])
    delivery = _delivery(user, "push", title="Ping", body="Pong")

    assert delivery_send(delivery_id=delivery.pk).status == "sent"

    [request] = push_service.requests
    assert request.path == "/push/device-1"
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["authorization"].startswith("vapid t=")
    payload = http_ece.decrypt(
        request.body,
        private_key=browser["private"],
        auth_secret=browser["auth"],
        version="aes128gcm",
    )
    assert json.loads(payload)["title"] == "Ping" and json.loads(payload)["body"] == "Pong"
    device.refresh_from_db()
    assert device.last_used_at is not None


def test_a_subscription_the_push_service_reports_gone_is_deleted(
    in_tenant_a, push_service, browser
) -> None:
    push_service.answer(410)
    push_service.answer(201)
    user = make_user()
    gone = make_device(user, f"{push_service.url}/push/gone", keys=browser["keys"])
    alive = make_device(user, f"{push_service.url}/push/alive", keys=browser["keys"])
    delivery = _delivery(user, "push")

    assert delivery_send(delivery_id=delivery.pk).status == "sent"

    assert list(DeviceSubscription.objects.filter(user=user)) == [alive]
    assert not DeviceSubscription.objects.filter(pk=gone.pk).exists()


def test_when_every_subscription_is_gone_the_push_is_skipped(
    in_tenant_a, push_service, browser
) -> None:
    push_service.always(404)
    user = make_user()
    make_device(user, f"{push_service.url}/push/old", keys=browser["keys"])
    delivery = _delivery(user, "push")

    outcome = delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert outcome.status == "skipped" and "gone" in delivery.last_error
    assert not DeviceSubscription.objects.filter(user=user).exists()


def test_a_push_service_5xx_is_retried(in_tenant_a, push_service, browser) -> None:
    push_service.always(502)
    user = make_user()
    make_device(user, f"{push_service.url}/push/x", keys=browser["keys"])
    delivery = _delivery(user, "push")

    outcome = delivery_send(delivery_id=delivery.pk)

    assert outcome.status == "pending" and outcome.retry_in is not None
    assert DeviceSubscription.objects.filter(user=user).count() == 1


def test_a_push_endpoint_leading_to_a_non_public_address_is_refused_when_connecting(
    in_tenant_a, push_service, browser, settings
) -> None:
    # given an endpoint that passes every check of its text (any push host allowed), but
    # whose name resolves to 127.0.0.1, where something listens
    settings.NOTIFICATION_WEBPUSH_HOSTS = None
    user = make_user()
    with counting_listener() as listener:
        endpoint = f"https://localhost:{listener.port}/push/x"
        assert webpush_endpoint_problem(endpoint) is None
        make_device(user, endpoint, keys=browser["keys"])
        delivery = _delivery(user, "push")
        # when the push is sent
        outcome = delivery_send(delivery_id=delivery.pk)
    # then the worker never connected, and the delivery failed for good
    assert listener.connections == 0
    delivery.refresh_from_db()
    assert outcome.status == "failed"
    assert "localhost leads to an address that is not allowed" in delivery.last_error


def test_a_stored_endpoint_the_http_client_reads_differently_is_not_called(
    in_tenant_a, push_service, browser
) -> None:
    # registered before the check read URLs as the HTTP client does
    user = make_user()
    make_device(user, "https://127.0.0.1\\.fcm.googleapis.com/x", keys=browser["keys"])
    delivery = _delivery(user, "push")

    outcome = delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert outcome.status == "failed" and "backslashes" in delivery.last_error


def test_the_console_push_provider_writes_a_file(in_tenant_a, tmp_path, settings) -> None:
    settings.LOCAL_DIR = tmp_path
    user = make_user()
    make_device(user, "https://push.example.com/1", keys={})
    delivery = _delivery(user, "push", title="Ping", body="Pong")

    assert delivery_send(delivery_id=delivery.pk).status == "sent"

    [written] = (tmp_path / "push").iterdir()
    record = json.loads(written.read_text())
    assert record["devices"] == ["https://push.example.com/1"]
    assert (record["payload"]["title"], record["payload"]["body"]) == ("Ping", "Pong")


def test_a_success_costs_the_breaker_one_redis_round_trip_and_still_clears_failures(
    settings, monkeypatch
) -> None:
    from redis.client import Redis

    from apps.notifications import breaker as breaker_module
    from apps.notifications.breaker import breaker_call

    settings.NOTIFICATION_BREAKER_FAIL_MAX = 3

    def fail() -> None:
        raise OSError("provider down")

    def calls(func, count: int) -> None:
        for _ in range(count):
            try:
                breaker_call("bench", func)
            except OSError:
                pass

    monkeypatch.setattr(breaker_module, "CLOSED_FRESH_SECONDS", 0.0)
    breaker_call("bench", lambda: "warm")  # the storage's keys exist now
    commands: list[str] = []
    original = Redis.execute_command

    def counting(self, *args, **kwargs):
        commands.append(str(args[0]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Redis, "execute_command", counting)
    assert breaker_call("bench", lambda: "ok") == "ok"
    assert commands == ["MGET"]  # one round trip: the state and the failures read together
    # A read that found it closed with no failures is trusted for a moment: no round trip.
    monkeypatch.setattr(breaker_module, "CLOSED_FRESH_SECONDS", 60.0)
    breaker_call("bench", lambda: "ok")
    breaker_call("bench", lambda: "ok")
    assert commands == ["MGET", "MGET"]

    # Two failures, a success, two failures: never three in a row, so still closed.
    calls(fail, 2)
    calls(lambda: "ok", 1)
    calls(fail, 2)
    assert breaker_state("bench") == "closed"
    calls(fail, 1)  # the third in a row
    assert breaker_state("bench") == "open"
