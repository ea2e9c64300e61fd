"""The lock files (requirements/*.txt) agree with pyproject.toml, the file a person edits.

A pin changed or a dependency added in pyproject.toml without `python3 run.py lock`
fails here; so does a locked package without a hash (installs use --require-hashes).
Also how `python3 run.py check` reads pip-audit's report of the locked set.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

import run

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# No database is read here, but the suite's autouse fixtures clear Redis, and a new Redis
# connection first applies the invalidations kept in the database.
pytestmark = pytest.mark.django_db

_PIN = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;]+)")


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def _declared(extras: tuple[str, ...]) -> dict[str, str]:
    """pyproject.toml's pins for the base dependencies and these extras."""
    lines = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        lines += PYPROJECT["project"]["optional-dependencies"][extra]
    pins = {}
    for line in lines:
        match = _PIN.match(line)
        assert match, f"{line!r}: pyproject.toml pins every dependency exactly (==)"
        pins[_name(match[1])] = match[2]
    return pins


def _locked(name: str) -> dict[str, tuple[str, int]]:
    """The lock's packages: version, and how many hashes it lists."""
    text = (run.LOCK_DIR / f"{name}.txt").read_text()
    packages: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = _PIN.match(block)
        if match:
            packages[_name(match[1])] = (match[2], block.count("--hash=sha256:"))
    return packages


def _stale(declared: dict[str, str], locked: dict[str, tuple[str, int]]) -> dict[str, tuple]:
    """{package: (pyproject's version, the lock's)} where they differ."""
    return {
        package: (version, locked.get(package, ("missing", 0))[0])
        for package, version in declared.items()
        if locked.get(package, ("", 0))[0] != version
    }


@pytest.mark.parametrize("name", sorted(run.LOCKS))
def test_every_pin_of_pyproject_is_locked_at_its_version(name: str) -> None:
    stale = _stale(_declared(run.LOCKS[name]), _locked(name))
    assert stale == {}, "run `python3 run.py lock`"


@pytest.mark.parametrize("name", sorted(run.LOCKS))
def test_every_locked_package_has_a_hash(name: str) -> None:
    locked = _locked(name)
    assert len(locked) >= len(_declared(run.LOCKS[name]))
    assert [package for package, (_, hashes) in locked.items() if hashes == 0] == []


def test_the_lock_check_sees_a_changed_pin_and_a_new_dependency() -> None:
    declared = {**_declared(()), "django": "0.0", "a-new-package": "1.0"}
    stale = _stale(declared, _locked("base"))
    assert stale == {
        "django": ("0.0", _locked("base")["django"][0]),
        "a-new-package": ("1.0", "missing"),
    }


def _pip_audit_answers(monkeypatch: pytest.MonkeyPatch, stdout: str, stderr: str = "") -> None:
    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert "--require-hashes" in command
        return subprocess.CompletedProcess(command, 0, stdout=stdout, stderr=stderr)

    monkeypatch.setattr(run.subprocess, "run", fake_run)


def test_the_audit_fails_on_a_known_vulnerability(monkeypatch, capsys) -> None:
    report = {
        "dependencies": [
            {"name": "django", "version": "5.2.19", "vulns": []},
            {
                "name": "requests",
                "version": "2.0.0",
                "vulns": [{"id": "GHSA-x", "fix_versions": ["2.32.0"], "aliases": []}],
            },
        ]
    }
    _pip_audit_answers(monkeypatch, json.dumps(report))
    assert run.audit_locked() is False
    assert "VULNERABLE: requests 2.0.0: GHSA-x (fixed in 2.32.0)" in capsys.readouterr().out


def test_the_audit_passes_with_a_warning_when_nothing_could_be_audited(monkeypatch, capsys) -> None:
    skipped = {"dependencies": [{"name": "django", "skip_reason": "not found on PyPI"}]}
    _pip_audit_answers(monkeypatch, json.dumps(skipped))
    assert run.audit_locked() is True
    assert "WARNING: vulnerabilities not checked" in capsys.readouterr().out

    _pip_audit_answers(monkeypatch, "", stderr="ConnectionError: api.osv.dev unreachable")
    assert run.audit_locked() is True
    assert "the advisory service failed: ConnectionError" in capsys.readouterr().out


def test_the_audit_passes_a_clean_report(monkeypatch, capsys) -> None:
    clean = {"dependencies": [{"name": "django", "version": "5.2.19", "vulns": []}]}
    _pip_audit_answers(monkeypatch, json.dumps(clean))
    assert run.audit_locked() is True
    assert "no known vulnerabilities in 1 audited packages" in capsys.readouterr().out
