"""Every module Django or DRF loads by dotted path imports cleanly as the *first* import.

Django runs its system checks from a set, so which of these gets imported
first changes from run to run; a circular import between two of them then
fails only sometimes (it did: `check --deploy` could not import the CSRF
failure view). Each path is imported in its own fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def dotted_paths() -> list[str]:
    drf: dict[str, Any] = settings.REST_FRAMEWORK
    paths: list[str] = [
        settings.CSRF_FAILURE_VIEW,
        drf["EXCEPTION_HANDLER"],
        drf["DEFAULT_PAGINATION_CLASS"],
    ]
    paths += [*drf["DEFAULT_RENDERER_CLASSES"], *drf["DEFAULT_AUTHENTICATION_CLASSES"]]
    paths += [
        drf["DEFAULT_CONTENT_NEGOTIATION_CLASS"],
        settings.ROOT_URLCONF,
        settings.PUBLIC_SCHEMA_URLCONF,
    ]
    paths += [m for m in settings.MIDDLEWARE if m.startswith(("apps.", "platform_site."))]
    return sorted({p for p in paths if p.startswith(("apps.", "platform_site."))})


def test_each_dotted_path_imports_first_in_a_fresh_interpreter() -> None:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE=os.environ.get(
            "DJANGO_SETTINGS_MODULE", "platform_site.settings.test"
        ),
    )
    code = (
        "import sys, django; django.setup()\n"
        "from importlib import import_module\n"
        "from django.utils.module_loading import import_string\n"
        "path = sys.argv[1]\n"
        "try:\n    import_module(path)\n"
        "except ModuleNotFoundError:\n    import_string(path)\n"
    )
    paths = dotted_paths()
    assert "apps.core.error_handling.csrf_failure" in paths
    procs = {
        path: subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", code, path],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in paths
    }
    failures = {}
    for path, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failures[path] = err.strip().splitlines()[-1:]
    assert failures == {}
