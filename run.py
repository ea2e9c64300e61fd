#!/usr/bin/env python3
"""Run the platform, or its tests, on a machine that has nothing but Python 3.11+.

    python3 run.py                 # web + worker + beat on http://localhost:8000
    python3 run.py test [ARGS]     # the whole test suite (ARGS go to pytest)
    python3 run.py check           # ruff, mypy, layers, migrations, known vulnerabilities
    python3 run.py manage ARGS     # any manage.py command, with the services running
    python3 run.py bench NAME      # a benchmark in bench/ (e.g. foundation), ratios printed
    python3 run.py lock [ARGS]     # compile requirements/*.txt from pyproject.toml
    python3 run.py docs [ARGS]     # serve the documentation site (docs/) on http://127.0.0.1:8001

The first run creates `.venv/` and installs the locked dependencies,
requirements/dev.txt, every version pinned and hash-checked (again whenever the
lock changes). Unless DATABASE_URL / REDIS_URL are set, an
embedded PostgreSQL and Redis are started with their data under `.local/`
(PLATFORM_LOCAL_DIR), shared by everything this command starts, and stopped
when it ends. While they run, their addresses are in `.local/services.json`:
`manage` run beside the platform uses them rather than starting its own
(`test` and `bench` always have throw-away servers of their own). This file and
devtools/services.py use only the standard library: they run before the virtual
environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from devtools.services import (
    ServicesBusyError,
    services_record,
    services_running,
    services_start,
)

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".platform-installed"


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


# The lock files compiled from pyproject.toml (`python3 run.py lock`) and the extras each
# holds: base.txt the application alone, production.txt the image's (with gunicorn),
# local.txt with the embedded servers, dev.txt everything (run.py installs it).
LOCKS: dict[str, tuple[str, ...]] = {
    "base": (),
    "production": ("production",),
    "local": ("local",),
    "dev": ("local", "dev", "production"),
}
LOCK_DIR = ROOT / "requirements"


def _requirements_digest() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", LOCK_DIR / "dev.txt"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create and fill .venv when needed, then continue inside it."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is required (this is {sys.version.split()[0]}).")
    if not PYTHON.exists():
        say(f"creating the virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = _requirements_digest()
    if not STAMP.exists() or STAMP.read_text().strip() != digest:
        say("installing dependencies (first run, or the lock changed; about a minute)")
        pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
        # Every package at its locked version, checked against its locked hashes; then the
        # project itself, with nothing more (its build backend, setuptools, is in the lock).
        locked = [
            *pip, "--progress-bar", "off", "--require-hashes", "--no-deps",
            "-r", str(LOCK_DIR / "dev.txt"),
        ]  # fmt: skip
        project = [*pip, "--no-deps", "--no-build-isolation", "--editable", str(ROOT)]
        if not (pip_install_with_progress(locked) and pip_install_with_progress(project)):
            sys.exit("[run] installing the dependencies failed (pip's output above)")
        STAMP.write_text(digest)
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(PYTHON), [str(PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])


class InstallProgress:
    """Turns pip's output (a line per package and step) into a few lines of progress: one per
    phase, and one every HEARTBEAT seconds while a phase lasts."""

    HEARTBEAT = 10.0

    def __init__(self) -> None:
        self.collected = 0
        self.phase = "collecting"
        self.started = time.monotonic()
        self.last_said = self.started
        self.tail: list[str] = []

    def line(self, text: str) -> str | None:
        """Take one line of pip's output; return what to tell the user, if anything."""
        text = text.rstrip()
        self.tail = [*self.tail[-40:], text]
        if text.startswith(("Collecting ", "Requirement already satisfied: ", "Obtaining ")):
            self.collected += 1
        elif text.startswith("Building wheels for collected packages"):
            return self._phase("building", f"building wheels ({self.collected} packages found)")
        elif text.startswith("Installing collected packages:"):
            count = len(text.partition(":")[2].split(","))
            return self._phase("installing", f"installing {count} packages")
        elif text.startswith("Successfully installed"):
            return self._phase("done", f"installed in {time.monotonic() - self.started:.0f} s")
        return None

    def tick(self) -> str | None:
        """Called every second or so: a line when nothing was said for HEARTBEAT seconds."""
        now = time.monotonic()
        if self.phase == "done" or now - self.last_said < self.HEARTBEAT:
            return None
        self.last_said = now
        found = f", {self.collected} packages found" if self.phase == "collecting" else ""
        return f"  still {self.phase} ({now - self.started:.0f} s{found})"

    def _phase(self, phase: str, message: str) -> str:
        self.phase = phase
        self.last_said = time.monotonic()
        return message


def pip_install_with_progress(command: list[str]) -> bool:
    """Run pip, telling progress as it goes; on failure show the end of its output."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read(stream: IO[str]) -> None:
        for text in stream:
            lines.put(text)
        lines.put(None)

    threading.Thread(target=read, args=(process.stdout,), daemon=True).start()
    progress = InstallProgress()
    for message in _progress_messages(progress, lines):
        say(message)
    if process.wait() != 0:
        print("\n".join(progress.tail), file=sys.stderr, flush=True)
        return False
    return True


def _progress_messages(progress: InstallProgress, lines: queue.Queue[str | None]) -> Iterator[str]:
    while True:
        try:
            text = lines.get(timeout=1)
        except queue.Empty:
            message = progress.tick()
        else:
            if text is None:
                return
            message = progress.line(text) or progress.tick()
        if message:
            yield message


def local_dir() -> Path:
    return Path(os.environ.get("PLATFORM_LOCAL_DIR", ROOT / ".local")).resolve()


def base_env(settings_module: str, extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["PLATFORM_LOCAL_DIR"] = str(local_dir())
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(PYTHON), str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True)


def cmd_up(args: argparse.Namespace) -> int:
    running = services_running(local_dir())
    if running is not None:
        # Two platforms on one data folder would share one Redis and database but not a port.
        what = (
            f"the platform already runs at {running.web_url}"
            if running.command == "up" and running.web_url
            else "its services are in use"
        )
        say(
            f"{what} (`run.py {running.command}`, pid {running.pid}); "
            "stop it first, or give this one its own PLATFORM_LOCAL_DIR"
        )
        return 1
    web_url = f"http://{PUBLIC_HOST}:{args.port}/"
    services = services_start(local_dir())
    record_remove = services_record(local_dir(), services, command="up", web_url=web_url)
    try:
        env = base_env("platform_site.settings.local", services.env)
        env["WEB_PORT"] = str(args.port)
        env["WEB_HOST"] = args.host
        say("migrating the public schema, the tenant template and every tenant")
        manage(env, "migrate_schemas", "--noinput", "-v", "0")
        bootstrap = subprocess.run(
            [
                str(PYTHON),
                str(ROOT / "manage.py"),
                "platform_bootstrap",
                *([] if args.no_demo else ["--demo"]),
                "--port",
                str(args.port),
                "--credentials-file",
                str(local_dir() / CREDENTIALS_NAME),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        if bootstrap.returncode != 0:
            print(bootstrap.stdout, end="", flush=True)
            say("platform_bootstrap failed (above)")
            return bootstrap.returncode
        say("starting web, worker and beat (Ctrl-C stops everything)")
        flags = ["--no-colour", *(["--no-prefix"] if args.no_prefix else [])]
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", *flags, "-f", str(ROOT / "Procfile")],
            env=env,
            cwd=ROOT,
            process_group=0,
        )
        threading.Thread(
            target=_tell_when_web_answers,
            args=(honcho, _probe_url(args.host, args.port), bootstrap.stdout),
            daemon=True,
        ).start()
        return _wait_forwarding_signals(honcho)
    finally:
        record_remove()
        services.stop()


PUBLIC_HOST = os.environ.get("PLATFORM_BASE_DOMAIN", "localhost")
CREDENTIALS_NAME = "credentials.txt"


def _probe_url(host: str, port: int) -> str:
    """The web's base URL as seen from this machine (a wildcard bind answers on loopback)."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "", "localhost") else host  # noqa: S104
    if ":" in probe_host:
        probe_host = f"[{probe_host}]"
    return f"http://{probe_host}:{port}"


def web_answers(base_url: str, *, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health/live", timeout=timeout) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def worker_consumes(base_url: str, *, timeout: float = 5.0) -> bool:
    """Whether readiness reports a worker consuming (true when it does not report workers)."""
    try:
        with urllib.request.urlopen(f"{base_url}/health/ready", timeout=timeout) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as error:  # 503: something is not ready; the body says what
        body = error.read()
    except (urllib.error.URLError, OSError):
        return False
    try:
        worker = json.loads(body)["checks"]["worker"]
    except (ValueError, KeyError, TypeError):
        return True
    return bool(worker.get("status") == "ok")


def _wait_until(
    check: Callable[[], bool], process: subprocess.Popen[bytes], limit: float, *, every: float
) -> bool:
    """Whether `check` came true within `limit` seconds while `process` runs."""
    deadline = time.monotonic() + limit
    while process.poll() is None:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return False


def _tell_when_web_answers(
    process: subprocess.Popen[bytes],
    base_url: str,
    message: str,
    *,
    web_limit: float = 300.0,
    worker_limit: float = 30.0,
) -> None:
    """Print what platform_bootstrap said (credentials, links) once web answers and a worker
    consumes: last on the screen, after web's, the worker's and beat's start-up lines."""
    if _wait_until(lambda: web_answers(base_url), process, web_limit, every=0.5):
        # Readiness keeps its answer about workers a few seconds: asking more often than
        # that would only add access-log lines.
        _wait_until(lambda: worker_consumes(base_url), process, worker_limit, every=2.5)
    elif process.poll() is None:
        say(f"web does not answer on {base_url} after {web_limit:.0f} s")
    time.sleep(0.5)  # web logs the probe's request just after answering it: let it go first
    if process.poll() is not None:
        return  # stopped (Ctrl-C, or a process failed): its lines are what matters now
    print(f"\n{message.rstrip()}\n", flush=True)
    say(f"ready; Ctrl-C stops everything. Credentials kept in {local_dir() / CREDENTIALS_NAME}")


def _wait_forwarding_signals(process: subprocess.Popen[bytes]) -> int:
    # honcho runs in a process group of its own, so Ctrl-C in the terminal (SIGINT to the
    # foreground group) and a SIGINT or SIGTERM sent to this process alone both reach it
    # exactly once, from here: web/worker/beat stop first, the embedded servers after them.
    def forward(signum: int, frame: object) -> None:
        if process.poll() is None:
            # honcho stops everything on SIGINT and SIGTERM only (a closed terminal: SIGHUP).
            process.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    return process.wait()


def cmd_test(args: argparse.Namespace) -> int:
    services = services_start(local_dir(), for_tests=True)
    try:
        env = base_env("platform_site.settings.test", services.env)
        env["DJANGO_SETTINGS_MODULE"] = "platform_site.settings.test"
        return subprocess.run(
            [str(PYTHON), "-m", "pytest", *args.pytest_args], env=env, cwd=ROOT
        ).returncode
    finally:
        services.stop()


def cmd_lock(args: argparse.Namespace) -> int:
    """Compile requirements/*.txt from pyproject.toml: every version pinned, with hashes."""
    failed = 0
    for name, extras in LOCKS.items():
        say(f"requirements/{name}.txt")
        command = [
            str(BIN / "pip-compile"), "--quiet", "--generate-hashes", "--allow-unsafe",
            "--strip-extras", "--no-emit-index-url", "--no-emit-find-links",
            *(f"--extra={extra}" for extra in extras),
            f"--output-file=requirements/{name}.txt", "pyproject.toml",
            *args.pip_compile_args,
        ]  # fmt: skip
        failed += subprocess.run(command, cwd=ROOT).returncode != 0
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    # Static checks import the settings but need no server: point at nothing.
    env = base_env(
        "platform_site.settings.test",
        {
            "DATABASE_URL": os.environ.get("DATABASE_URL", "postgresql://127.0.0.1:1/unused"),
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"),
        },
    )
    env["DJANGO_SETTINGS_MODULE"] = "platform_site.settings.test"
    steps = [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy", "."],
        # The apps' layers ([tool.importlinter] in pyproject.toml).
        ["lint-imports", "--no-cache"],
        # No database needed: the history-consistency check is skipped (with a warning) without one.
        [
            "python",
            "-W",
            "ignore::RuntimeWarning",
            "manage.py",
            "makemigrations",
            "--check",
            "--dry-run",
        ],
    ]
    failed = 0
    for step in steps:
        say(" ".join(step))
        result = subprocess.run([str(BIN / step[0]), *step[1:]], env=env, cwd=ROOT)
        failed += result.returncode != 0
    failed += not audit_locked()
    return 1 if failed else 0


def audit_locked() -> bool:
    """Known vulnerabilities in the locked packages (pip-audit against PyPI's advisories).
    False when one is found; when the advisory service cannot be reached, or could audit
    nothing, a warning says so and the check goes on (it cannot pass or fail offline)."""
    lock = LOCK_DIR / "dev.txt"
    say(f"pip-audit -r {lock.relative_to(ROOT)}")
    command = [
        str(BIN / "pip-audit"), "-r", str(lock), "--require-hashes", "--disable-pip",
        "--no-deps", "--progress-spinner", "off", "--format", "json",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        say(f"WARNING: vulnerabilities not checked, the advisory service failed: {reason}")
        return True
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    for dependency in vulnerable:
        ids = ", ".join(v["id"] for v in dependency["vulns"])
        fixes = ", ".join(sorted({f for v in dependency["vulns"] for f in v["fix_versions"]}))
        say(f"VULNERABLE: {dependency['name']} {dependency['version']}: {ids} (fixed in {fixes})")
    if not audited:
        say(
            f"WARNING: vulnerabilities not checked: the advisory service answered for none of "
            f"the {len(dependencies)} locked packages (offline, or a mirror without PyPI's JSON API)"
        )
    elif len(audited) < len(dependencies):
        say(f"WARNING: {len(dependencies) - len(audited)} locked packages could not be audited")
    if audited and not vulnerable:
        say(f"no known vulnerabilities in {len(audited)} audited packages")
    return not vulnerable


def cmd_manage(args: argparse.Namespace) -> int:
    running = services_running(local_dir())
    if running is not None:
        # The platform (or another `manage`) runs: use its servers, the data it shows.
        say(f"using the services of the running `run.py {running.command}` (pid {running.pid})")
        env = base_env("platform_site.settings.local", running.env)
        if running.web_url:
            env.setdefault("WEB_PORT", running.web_url.rstrip("/").rpartition(":")[2])
        return subprocess.run(
            [str(PYTHON), "manage.py", *args.manage_args], env=env, cwd=ROOT
        ).returncode

    services = services_start(local_dir())
    record_remove = services_record(local_dir(), services, command="manage")
    try:
        env = base_env("platform_site.settings.local", services.env)
        return subprocess.run(
            [str(PYTHON), "manage.py", *args.manage_args], env=env, cwd=ROOT
        ).returncode
    finally:
        record_remove()
        services.stop()


def cmd_bench(args: argparse.Namespace) -> int:
    # Benchmarks start (and stop) their own servers, embedded or from the env.
    script = ROOT / "bench" / f"{args.bench_args[0] if args.bench_args else 'foundation'}.py"
    if not script.exists():
        say(f"no benchmark {script.name}; see bench/")
        return 2
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [str(PYTHON), str(script), *args.bench_args[1:]], env=env, cwd=ROOT
    ).returncode


def cmd_docs(args: argparse.Namespace) -> int:
    """Serve the documentation site (mkdocs.yml, docs/) with live reload."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    # Port 8001 by default, so the site and the platform (8000) can run side by side.
    given = any(
        arg in ("-a", "--dev-addr") or arg.startswith("--dev-addr=") for arg in args.docs_args
    )
    address = [] if given else ["--dev-addr", "127.0.0.1:8001"]
    return subprocess.run(
        [str(BIN / "mkdocs"), "serve", *address, *args.docs_args], env=env, cwd=ROOT
    ).returncode


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("up", help="run web, worker and beat (the default)")
    up.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT", "8000")))
    up.add_argument("--host", default=os.environ.get("WEB_HOST", "127.0.0.1"))
    up.add_argument("--no-demo", action="store_true", help="do not create the demo tenant 'acme'")
    up.add_argument("--no-prefix", action="store_true", help="log lines without honcho's prefixes")
    test = sub.add_parser("test", help="run the test suite")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    sub.add_parser("check", help="ruff, mypy, layers, migrations, known vulnerabilities")
    manage_parser = sub.add_parser("manage", help="run a manage.py command")
    manage_parser.add_argument("manage_args", nargs=argparse.REMAINDER)
    sub.add_parser("bench", help="run a benchmark from bench/ (default: foundation)")
    sub.add_parser("lock", help="compile requirements/*.txt from pyproject.toml (pip-compile)")
    sub.add_parser("docs", help="serve the documentation site from docs/ (mkdocs serve)")

    argv = sys.argv[1:] or ["up"]
    if argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["up", *argv]
    if argv[0] in ("test", "manage", "bench", "lock", "docs"):
        # Everything after the command belongs to pytest / manage.py / the benchmark /
        # pip-compile (e.g. `lock --upgrade-package django`) / mkdocs serve.
        args = parser.parse_args(argv[:1])
        name = {"test": "pytest", "lock": "pip_compile"}.get(argv[0], argv[0])
        setattr(args, f"{name}_args", argv[1:])
    else:
        args = parser.parse_args(argv)
    try:
        ensure_venv()
    except KeyboardInterrupt:
        return 130
    commands = {
        "up": cmd_up,
        "test": cmd_test,
        "check": cmd_check,
        "manage": cmd_manage,
        "bench": cmd_bench,
        "lock": cmd_lock,
        "docs": cmd_docs,
    }
    try:
        return commands[args.command](args)
    except ServicesBusyError as error:
        say(str(error))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
