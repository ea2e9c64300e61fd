"""The documentation site (mkdocs.yml, docs/) builds with --strict: no broken link or anchor,
no page left out of the nav, and nothing fetched from the network. And the configuration
reference cannot drift: every variable the settings read is documented, and the reference
lists none that nothing reads."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Nothing here reads the database, but the suite's autouse fixtures clear Redis, and a
# new Redis connection first applies the invalidations kept in the database.
pytestmark = pytest.mark.django_db


def test_the_docs_build_strictly(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    result = subprocess.run(  # noqa: S603 (the venv's own mkdocs, fixed arguments)
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "api" / "index.html").exists()


def _variables_read() -> set[str]:
    """Every environment variable the settings read: the first argument of each env_*()
    call in platform_site/env.py and platform_site/settings/, and gunicorn.conf.py's."""
    names: set[str] = set()
    sources = [ROOT / "platform_site" / "env.py", ROOT / "gunicorn.conf.py"]
    sources += sorted((ROOT / "platform_site" / "settings").glob("*.py"))
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func, first = node.func, node.args[0]
            env_helper = isinstance(func, ast.Name) and func.id.startswith("env_")
            environ_get = (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and ast.unparse(func.value) == "os.environ"
            )
            if (env_helper or environ_get) and isinstance(first, ast.Constant):
                names.add(str(first.value))
    return names


def test_every_environment_variable_the_settings_read_is_documented() -> None:
    read = _variables_read()
    assert {"DATABASE_URL", "REDIS_URL", "API_RATE_LIMIT", "WEB_CONCURRENCY"} <= read
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", _docs_text()))
    assert sorted(read - documented) == []


def test_the_configuration_reference_names_only_variables_something_reads() -> None:
    table = (ROOT / "docs" / "configuration.md").read_text()
    listed = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", table, flags=re.MULTILINE))
    assert len(listed) > 40
    code = (
        "\n".join(
            path.read_text()
            for folder in ("platform_site", "apps", "devtools")
            for path in (ROOT / folder).rglob("*.py")
        )
        + (ROOT / "gunicorn.conf.py").read_text()
        + (ROOT / "run.py").read_text()
    )
    assert sorted(name for name in listed if f'"{name}"' not in code) == []


def _docs_text() -> str:
    return "\n".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))
