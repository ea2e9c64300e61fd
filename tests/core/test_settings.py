"""Production settings refuse unsafe configuration, and are clean under `check --deploy` when given a sane one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k3y-" + "x7Qp9" * 12

SAFE_ENV = {
    "DJANGO_SETTINGS_MODULE": "platform_site.settings.production",
    "DJANGO_SECRET_KEY": STRONG_KEY,
    "DJANGO_DEBUG": "false",
    "ALLOWED_HOSTS": "platform.example.com,.platform.example.com",
    "PLATFORM_BASE_DOMAIN": "platform.example.com",
    "DATABASE_URL": "postgresql://127.0.0.1:1/unused",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


def run_manage(env_changes: dict[str, str | None], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALLOWED_HOSTS"))}
    env.update({k: v for k, v in SAFE_ENV.items()})
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_sane_configuration() -> None:
    result = run_manage({}, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_SECRET_KEY": "short"}, "too weak"),
        ({"DJANGO_SECRET_KEY": "django-insecure-" + "a1b2c3d4e5" * 5}, "too weak"),
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG must be off"),
        ({"ALLOWED_HOSTS": "*"}, "'*' is refused"),
        ({"ALLOWED_HOSTS": "example.com,*"}, "'*' is refused"),
        ({"DJANGO_DEBUG": "perhaps"}, "DJANGO_DEBUG must be true or false"),
        ({"DATABASE_URL": None}, "DATABASE_URL is not set"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ],
)
def test_production_refuses_to_start(changes: dict[str, str | None], complaint: str) -> None:
    result = run_manage(changes, "check")
    assert result.returncode != 0
    assert complaint in result.stderr


def test_log_level_is_read_in_any_case() -> None:
    # gunicorn.conf.py lower-cases LOG_LEVEL for gunicorn; Django's logging wants it upper.
    result = run_manage({"LOG_LEVEL": "warning"}, "check")
    assert result.returncode == 0, result.stderr
