"""No log line, error page or error report holds a password, token, secret or key, whatever
fails: secrets are submitted to every endpoint that takes one while PostgreSQL or Redis is
down, and everything the logging system writes is searched for them, in JSON and console
mode. Behind that, the redaction of every line (apps/core/logging.py) on its own."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from celery import shared_task
from django.conf import settings as django_settings
from django.core import mail
from django.test import Client
from django.utils.log import configure_logging
from rest_framework.test import APIClient

from apps.core.logging import log_rendered, logging_config
from apps.tenants.resolution import public_tenant, tenant_for_host
from tests.conftest import TenantFixture
from tests.core.outages import fail_database, fail_redis, signed_in

PUBLIC = "localhost"
SAMPLE_JWT = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLWJ5dGVz"

Everything = Callable[[], str]


def _handlers() -> Iterator[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not type(handler).__module__.startswith("_pytest"):
                yield handler


def _write_every_stream_to(buffer: io.StringIO) -> None:
    for handler in _handlers():
        if type(handler) is not logging.FileHandler and isinstance(handler, logging.StreamHandler):
            handler.setStream(buffer)


@pytest.fixture(params=["json", "console"])
def log_format(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def everything_logged(
    log_format: str, settings: Any, capfd: pytest.CaptureFixture[str]
) -> Iterator[Everything]:
    """The logging configured as Django configures it (its defaults, then ours), at DEBUG;
    returns what it wrote since: every stream handler of every logger, the mails of Django's
    mail_admins (were it still attached) and anything written to stdout / stderr."""
    settings.ADMINS = [("Operations", "ops@example.test")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    configure_logging(
        django_settings.LOGGING_CONFIG, logging_config(json=log_format == "json", level="DEBUG")
    )
    buffer = io.StringIO()
    _write_every_stream_to(buffer)

    def everything() -> str:
        out, err = capfd.readouterr()
        mails = [f"{m.subject}\n{m.body}\n{getattr(m, 'alternatives', '')}" for m in mail.outbox]
        return "\n".join([buffer.getvalue(), out, err, *mails])

    yield everything
    structlog.contextvars.clear_contextvars()
    configure_logging(django_settings.LOGGING_CONFIG, django_settings.LOGGING)


class Secrets:
    """Unique secrets for one test, shaped so that no look-alike rule could hide them: only
    keeping them out of the log does."""

    def __init__(self) -> None:
        self.values: list[str] = []

    def new(self, label: str) -> str:
        value = f"{label}-{uuid.uuid4().hex[:16]}"
        self.values.append(value)
        return value

    def add(self, value: str) -> str:
        self.values.append(value)
        return value

    def found_in(self, text: str) -> list[str]:
        return [value for value in self.values if value in text]


def _signed_in(api: APIClient, tenant: TenantFixture, secrets: Secrets) -> dict[str, str]:
    """The tenant admin's tokens, warm as `signed_in` leaves them, counted among the secrets."""
    tokens = signed_in(
        api, tenant, warm=("/api/v1/users/me", "/api/v1/users", "/api/v1/identity-providers")
    )
    secrets.add(tokens["access_token"])
    secrets.add(tokens["refresh_token"])
    return tokens


def _submit_secrets_everywhere(
    api: APIClient,
    operator_api: APIClient,
    tenant: TenantFixture,
    tokens: dict[str, str],
    secrets: Secrets,
) -> list[tuple[str, int]]:
    """Every endpoint that takes a secret, given fresh ones (and the tenant admin's tokens,
    and the operator's session cookie); returns (what, status) pairs."""
    bearer: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
    host: dict[str, Any] = {"HTTP_HOST": tenant.host}
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("sign-in", lambda: api.post(
            "/api/v1/auth/login",
            {"email": tenant.admin_email, "password": secrets.new("login-password")},
            format="json", **host)),
        ("sign-in on the public host", lambda: api.post(
            "/api/v1/auth/login",
            {"email": tenant.admin_email, "password": secrets.new("public-login-password")},
            format="json", HTTP_HOST=PUBLIC)),
        ("refresh", lambda: api.post(
            "/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json",
            **host)),
        ("logout", lambda: api.post(
            "/api/v1/auth/logout", {"refresh_token": tokens["refresh_token"]}, format="json",
            **host)),
        ("sessions", lambda: api.get("/api/v1/auth/sessions", **host, **bearer)),
        ("password change", lambda: api.post(
            "/api/v1/auth/password/change",
            {"old_password": secrets.new("old-password"), "new_password": secrets.new("new-pw")},
            format="json", **host, **bearer)),
        ("password reset", lambda: api.post(
            "/api/v1/auth/password/reset", {"email": tenant.admin_email}, format="json", **host)),
        ("password reset confirm", lambda: api.post(
            "/api/v1/auth/password/reset/confirm",
            {"token": secrets.new("reset-token"), "new_password": secrets.new("reset-password")},
            format="json", **host)),
        ("e-mail change confirm", lambda: api.post(
            "/api/v1/auth/email/confirm", {"token": secrets.new("email-change-token")},
            format="json", **host)),
        ("invitation accept", lambda: api.post(
            "/api/v1/invitations/accept",
            {"token": secrets.new("invitation-token"), "password": secrets.new("invitee-pw")},
            format="json", **host)),
        ("sign-up", lambda: api.post(
            "/api/v1/auth/signup",
            {"email": "someone@alpha.test", "password": secrets.new("signup-password")},
            format="json", **host)),
        ("address verification", lambda: api.post(
            "/api/v1/auth/email/verify", {"token": secrets.new("verify-token")},
            format="json", **host)),
        ("sso authorize", lambda: api.get(
            "/api/v1/auth/oidc/corp/authorize",
            {"redirect_uri": "https://app.example.test/done"}, **host)),
        ("sso callback", lambda: api.get(
            "/api/v1/auth/oidc/corp/callback",
            {"code": secrets.new("oidc-code"), "state": secrets.new("oidc-state")}, **host)),
        ("sso exchange", lambda: api.post(
            "/api/v1/auth/oidc/exchange", {"code": secrets.new("exchange-code")}, format="json",
            **host)),
        ("user create", lambda: api.post(
            "/api/v1/users",
            {"email": "new@alpha.test", "username": "new-user",
             "password": (pw := secrets.new("user-password")), "password_confirm": pw},
            format="json", **host, **bearer)),
        ("identity provider create", lambda: api.post(
            "/api/v1/identity-providers",
            {"slug": "corp", "name": "Corp", "issuer": "https://idp.example.test",
             "client_id": "platform", "client_secret": secrets.new("client-secret")},
            format="json", **host, **bearer)),
        ("push device", lambda: api.post(
            "/api/v1/notifications/devices",
            {"kind": "fcm", "endpoint": secrets.new("fcm-registration-token")},
            format="json", **host, **bearer)),
        ("tenant create (operator session)", lambda: operator_api.post(
            "/api/v1/tenants",
            {"name": "New", "slug": "new-tenant", "admin_email": "boss@new.test",
             "admin_password": secrets.new("tenant-admin-password")},
            format="json", HTTP_HOST=PUBLIC)),
        ("logout-all", lambda: api.post("/api/v1/auth/logout-all", **host, **bearer)),
        ("admin sign-in", lambda: Client(raise_request_exception=False).post(
            "/admin/login/?next=/admin/",
            {"username": tenant.admin_email, "password": secrets.new("admin-form-password")},
            **host)),
    ]  # fmt: skip
    secrets.add(operator_api.cookies[django_settings.SESSION_COOKIE_NAME].value)
    return [(what, call().status_code) for what, call in calls]


@pytest.mark.django_db
def test_no_secret_is_logged_while_postgresql_is_down(
    everything_logged: Everything,
    api: APIClient,
    operator_api: APIClient,
    tenant_a: TenantFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = Secrets()
    public_tenant()  # resolved before the outage, as the tenant's host is by signing in
    tokens = _signed_in(api, tenant_a, secrets)
    fail_database(monkeypatch)

    statuses = _submit_secrets_everywhere(api, operator_api, tenant_a, tokens, secrets)

    logged = everything_logged()
    assert secrets.found_in(logged) == []
    assert [(what, status) for what, status in statuses if status != 503] == []
    assert "database_unavailable" in logged  # the failures were logged, with their tracebacks
    assert "Traceback" in logged or '"exception": [{' in logged


@pytest.mark.django_db
def test_no_secret_is_logged_while_redis_is_down(
    everything_logged: Everything,
    api: APIClient,
    operator_api: APIClient,
    tenant_a: TenantFixture,
    settings: Any,
) -> None:
    secrets = Secrets()
    tokens = _signed_in(api, tenant_a, secrets)
    fail_redis(settings)

    statuses = _submit_secrets_everywhere(api, operator_api, tenant_a, tokens, secrets)

    logged = everything_logged()
    assert secrets.found_in(logged) == []
    assert [(what, status) for what, status in statuses if status >= 500 and status != 503] == []
    assert "SERVICE_UNAVAILABLE" in logged  # sign-in fails closed without its counters
    assert "Traceback" in logged or '"exception": [{' in logged


# ------------------------------------------------------------------ Django's DEBUG page


@pytest.mark.django_db
def test_the_debug_page_shows_no_secret(
    tenant_a: TenantFixture, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DEBUG on (local settings) an error outside DRF is Django's technical 500 page,
    which shows every frame's variables, the form, the query string and the cookies."""
    settings.DEBUG = True
    secrets = Secrets()
    tenant_for_host(tenant_a.host)
    client = Client(raise_request_exception=False)
    client.cookies[settings.SESSION_COOKIE_NAME] = secrets.new("session-cookie")
    fail_database(monkeypatch)

    code, state = secrets.new("oidc-code"), secrets.new("oidc-state")
    response = client.post(
        f"/admin/login/?next=/admin/&code={code}&state={state}",
        {"username": tenant_a.admin_email, "password": secrets.new("admin-form-password")},
        HTTP_HOST=tenant_a.host,
        HTTP_AUTHORIZATION=f"Bearer {secrets.new('bearer-token')}",
    )

    page = response.content.decode()
    assert response.status_code == 500 and "Traceback" in page  # Django's debug page
    assert secrets.found_in(page) == []


# ------------------------------------------------------------------ Celery and gunicorn


@shared_task(name="tests.core.provider_call_with_a_token")
def provider_call_with_a_token(token: str) -> None:
    headers = {"Authorization": f"Token {token}"}
    raise RuntimeError(f"the provider refused the call ({len(headers)} header)")


@pytest.mark.django_db
def test_a_failed_task_logs_neither_its_arguments_nor_its_variables(
    everything_logged: Everything,
) -> None:
    secret = Secrets().new("provider-token")

    result = provider_call_with_a_token.apply(kwargs={"token": secret}, throw=False)

    assert result.failed()
    logged = everything_logged()
    assert secret not in logged
    assert "the provider refused the call" in logged  # the failure itself is logged


@pytest.mark.django_db
def test_celery_logs_through_our_handlers(
    settings: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`celery worker` sets logging up itself unless told not to: its task loggers would get a
    plain handler of their own, which writes what ours would redact."""
    from celery.app.log import Logging
    from celery.utils.log import get_task_logger

    from platform_site.celery import app

    monkeypatch.setattr(Logging, "_setup", False)
    for variable in ("CELERY_LOG_LEVEL", "CELERY_LOG_FILE"):  # Celery sets them: undone after
        monkeypatch.setenv(variable, "")
    app.log.setup(loglevel="INFO", redirect_stdouts=False)  # what the worker does first
    buffer = io.StringIO()
    _write_every_stream_to(buffer)
    secret = Secrets().new("task-token")
    try:
        get_task_logger("tests.core.provider").warning("retrying with token=%s", secret)
        logged = buffer.getvalue() + "".join(capfd.readouterr())
    finally:
        logging.captureWarnings(False)  # Celery's setup turned it on
        configure_logging(django_settings.LOGGING_CONFIG, django_settings.LOGGING)
    assert secret not in logged
    assert "retrying with token=" in logged


def _gunicorn_error_log() -> Any:
    import copy
    import runpy
    from pathlib import Path

    from gunicorn.config import Config  # type: ignore[import-untyped]

    conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    cfg = Config()
    for name, value in conf.items():
        if name in cfg.settings:
            cfg.set(name, copy.deepcopy(value))
    return cfg.logger_class(cfg)


def test_gunicorn_error_log_shows_no_secret() -> None:
    """gunicorn logs a request its worker could not handle with the URI (query string
    included) and the traceback."""
    secrets = Secrets()
    gunicorn_log = _gunicorn_error_log()
    buffer = io.StringIO()
    _write_every_stream_to(buffer)
    code, state = secrets.new("oidc-code"), secrets.new("oidc-state")
    try:
        try:
            authorization = f"Bearer {secrets.new('bearer-token')}"
            raise OSError(f"connection reset ({len(authorization)})")
        except OSError:
            gunicorn_log.exception(
                "Error handling request %s",
                f"/api/v1/auth/oidc/corp/callback?code={code}&state={state}",
            )
        logged = buffer.getvalue()
    finally:
        configure_logging(django_settings.LOGGING_CONFIG, django_settings.LOGGING)
    assert secrets.found_in(logged) == []
    assert "Error handling request /api/v1/auth/oidc/corp/callback?code=" in logged


# ------------------------------------------------------------------ redaction, line by line


def test_values_named_like_secrets_are_redacted(everything_logged: Everything) -> None:
    structlog.get_logger("apps.tests").warning(
        "provider_configured",
        client_secret="s3.client",
        password="s3.password",
        new_password="s3.new",
        refresh_token="s3.refresh",
        api_key="s3.apikey",
        authorization="s3.authorization",
        headers={"Cookie": "sessionid=s3.cookie", "Accept": "application/json"},
        keys=["tenancy:host:alpha.localhost"],  # cache keys: not a secret's name
        provider="corp",
    )

    logged = everything_logged()
    assert "s3." not in logged
    assert logged.count("[REDACTED]") >= 7
    assert "alpha.localhost" in logged and "corp" in logged and "application/json" in logged


def test_secrets_in_messages_are_redacted_for_foreign_loggers_too(
    everything_logged: Everything,
) -> None:
    logging.getLogger("django.request").error(
        "Bad gateway: %s password=%s Authorization: Bearer %s url=%s",
        "/api/v1/auth/oidc/corp/callback?state=s3state1&code=s3code1",
        "s3pw1",
        SAMPLE_JWT,
        "postgres://platform:s3dbpassword@db:5432/platform",
    )
    try:
        raise RuntimeError(f"refused {{'refresh_token': '{SAMPLE_JWT}', 'password': 's3pw2'}}")
    except RuntimeError:
        logging.getLogger("kombu").exception("publish failed")

    logged = everything_logged()
    for secret in ("s3state1", "s3code1", "s3pw1", "s3pw2", "s3dbpassword", SAMPLE_JWT):
        assert secret not in logged
    assert "/api/v1/auth/oidc/corp/callback?state=" in logged and "db:5432" in logged


def test_the_access_line_is_redacted(everything_logged: Everything) -> None:
    reset_token = "Xq3" + uuid.uuid4().hex + "Zr9Kp"  # token_urlsafe's alphabet, 40 characters
    log_rendered(
        logging.getLogger("platform.access"),
        logging.INFO,
        "request",
        method="GET",
        path=f"/reset/{reset_token}/{SAMPLE_JWT}",
        status=200,
    )

    logged = everything_logged()
    assert reset_token not in logged and SAMPLE_JWT not in logged
    assert "/reset/" in logged
    assert '"status": 200' in logged or "status=200" in logged
