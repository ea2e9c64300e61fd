"""`python3 run.py` serves plain http (runserver) on WEB_PORT: the local settings make the
links the platform builds (OIDC callback, discovery's jwks_uri, reset links) say so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRINT = "from django.conf import settings; print(settings.PLATFORM_URL_SCHEME, settings.PLATFORM_URL_PORT)"


def local_settings(**env_changes: str) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PLATFORM_URL_", "WEB_PORT"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "platform_site.settings.local",
            "DATABASE_URL": "postgresql://127.0.0.1:1/unused",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            **env_changes,
        }
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", f"import django; django.setup(); {PRINT}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http 8000"),
        ({"WEB_PORT": "8123"}, "http 8123"),  # python3 run.py --port 8123
        ({"PLATFORM_URL_SCHEME": "https", "PLATFORM_URL_PORT": "8443"}, "https 8443"),
    ],
)
def test_local_links_follow_the_local_server(env: dict[str, str], expected: str) -> None:
    assert local_settings(**env) == expected
