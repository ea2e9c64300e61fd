"""Reading configuration from the environment (12-factor), with errors that name the variable."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

# The project folder (the checkout, or /app in the image).
_PROJECT_DIR = Path(__file__).resolve().parents[1]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [part.strip() for part in raw.split(",") if part.strip()]


def redis_db_url(url: str, db: int) -> str:
    """The same Redis server with another database number (redis://host:port/<db>)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


# Values several settings modules derive theirs from. Each topic module in
# platform_site/settings/ reads them here rather than importing base.py, which imports it.


def debug_enabled() -> bool:
    return env_bool("DJANGO_DEBUG", False)


def platform_base_domain() -> str:
    return env_str("PLATFORM_BASE_DOMAIN", "localhost").lower()


def local_dir() -> Path:
    """Where files for a developer go (mail, SMS, push, exports) and run.py keeps its data."""
    return Path(env_str("PLATFORM_LOCAL_DIR", str(_PROJECT_DIR / ".local")))


def redis_url() -> str:
    url = env_str("REDIS_URL")
    if not url:
        raise ImproperlyConfigured(
            "REDIS_URL is not set. `python3 run.py` starts an embedded Redis and sets it for you."
        )
    return url
