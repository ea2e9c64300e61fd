"""The documentation site (mkdocs.yml, docs/) builds with --strict: no broken link or anchor,
no page left out of the nav, and nothing fetched from the network."""

from __future__ import annotations

import os
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
