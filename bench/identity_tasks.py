"""The identity benchmark's steps that need Django (or a fresh process), run by `identity.py`.

    python -m bench.identity_tasks setup --slug bench-identity --users 10000 --search mar
    python -m bench.identity_tasks count --host bench-identity.localhost --token ... --search mar
    python -m bench.identity_tasks argon2-memory --time-cost 2 --memory-cost 19456 --parallelism 1

Every command prints one JSON object on stdout (logs go to stderr), like
`bench.django_tasks`, whose SQL / Redis recorder and WSGI request helpers are
reused. `argon2-memory` imports neither Django nor the platform: it is a
fresh process that hashes once with argon2-cffi's low-level API, so its peak
RSS growth is the memory one verify with those parameters needs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Deterministic, realistic-looking names: a search for a common first-name prefix
# ("mar") matches a few per cent of the users, as it would in a real directory.
FIRST_NAMES = (
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william",
    "elizabeth", "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
    "charles", "karen", "christopher", "nancy", "daniel", "lisa", "matthew", "betty", "anthony",
    "margaret", "mark", "sandra", "donald", "ashley", "steven", "kimberly", "paul", "emily",
    "andrew", "donna", "joshua", "michelle", "kenneth", "dorothy", "kevin", "carol", "brian",
    "amanda", "george", "melissa", "edward", "deborah", "ronald", "stephanie", "timothy",
    "rebecca", "jason", "sharon", "jeffrey", "laura", "ryan", "cynthia", "jacob", "kathleen",
    "gary", "amy", "nicholas", "angela", "eric", "shirley", "jonathan", "anna", "stephen",
    "brenda", "larry", "pamela", "justin", "emma", "scott", "nicole", "brandon", "helen",
    "benjamin", "samantha", "samuel", "katherine", "gregory", "christine", "alexander", "debra",
    "frank", "rachel", "patrick", "carolyn", "raymond", "janet", "jack", "maria", "dennis",
    "catherine", "jerry", "heather", "tyler", "diane", "aaron", "ruth", "jose", "julie", "adam",
    "olivia", "nathan", "joyce", "henry", "virginia", "douglas", "victoria", "zachary", "kelly",
    "peter", "lauren", "kyle", "christina", "ethan", "joan", "walter", "evelyn", "noah",
    "judith", "jeremy", "megan", "christian", "andrea", "keith", "cheryl", "roger", "hannah",
    "terry", "jacqueline", "gerald", "martha", "harold", "gloria", "sean", "teresa", "austin",
    "ann", "carl", "sara", "arthur", "madison", "lawrence", "frances", "dylan", "kathryn",
    "jesse", "janice", "jordan", "jean", "bryan", "abigail", "billy", "alice", "joe", "julia",
    "bruce", "judy", "gabriel", "sophia", "logan", "grace", "albert", "denise", "willie", "amber",
    "alan", "doris", "juan", "marilyn", "wayne", "danielle", "elijah", "beverly", "randy",
    "isabella", "roy", "theresa", "vincent", "diana", "ralph", "natalie", "eugene", "brittany",
    "russell", "charlotte", "bobby", "marie", "mason", "kayla", "philip", "alexis", "louis", "lori",
)  # fmt: skip
LAST_NAMES = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor",
    "moore", "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez",
    "clark", "ramirez", "lewis", "robinson", "walker", "young", "allen", "king", "wright",
    "scott", "torres", "nguyen", "hill", "flores", "green", "adams", "nelson", "baker", "hall",
    "rivera", "campbell", "mitchell", "carter", "roberts", "gomez", "phillips", "evans",
    "turner", "diaz", "parker", "cruz", "edwards", "collins", "reyes", "stewart", "morris",
    "morales", "murphy", "cook", "rogers", "gutierrez", "ortiz", "morgan", "cooper", "peterson",
    "bailey", "reed", "kelly", "howard", "ramos", "kim", "cox", "ward", "richardson", "watson",
    "brooks", "chavez", "wood", "james", "bennett", "gray", "mendoza", "ruiz", "hughes", "price",
    "alvarez", "castillo", "sanders", "patel", "myers", "long", "ross", "foster", "jimenez",
)  # fmt: skip
DOMAINS = ("example.com", "example.org", "corp.example.net", "mail.example.io")
LOGIN_EMAIL = "bench-staff@example.com"


def _setup_django() -> None:
    import django

    django.setup()


# ------------------------------------------------------------------ setup


def _hasher_facts(encoded: str) -> dict[str, Any]:
    """The configured default hasher and what a hash it makes says about its parameters."""
    from django.contrib.auth.hashers import get_hasher, identify_hasher

    hasher = get_hasher("default")
    used = identify_hasher(encoded)
    facts: dict[str, Any] = {
        "default_hasher": f"{type(hasher).__module__}.{type(hasher).__qualname__}",
        "stored_hash_hasher": f"{type(used).__module__}.{type(used).__qualname__}",
        "algorithm": hasher.algorithm,
        "encoded_prefix": encoded.rsplit("$", 2)[0],
    }
    for name in ("time_cost", "memory_cost", "parallelism", "iterations"):
        if hasattr(hasher, name):
            facts[name] = getattr(hasher, name)
    if hasher.algorithm == "argon2":
        decoded = hasher.decode(encoded)
        facts["variety"] = decoded["variety"]
        facts["stored"] = {
            "time_cost": decoded["time_cost"],
            "memory_cost": decoded["memory_cost"],
            "parallelism": decoded["parallelism"],
        }
    return facts


def cmd_setup(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark tenant: its staff user (the production hasher), `users` more users
    (bulk-inserted with one precomputed hash: the list never hashes), and the timing of
    one `check_password` with Django's configured hashers, for reference."""
    from django.contrib.auth.hashers import check_password, make_password
    from django_tenants.utils import tenant_context

    from apps.accounts.models import User
    from apps.accounts.selectors import search_query
    from apps.accounts.services.sessions import ClientInfo, session_login
    from apps.accounts.tokens import TokenPair
    from apps.tenants.services import tenant_create
    from bench.django_tasks import ADMIN_PASSWORD

    started = time.perf_counter()
    result = tenant_create(
        name=f"Bench {args.slug}",
        slug=args.slug,
        admin_email=f"admin@{args.slug}.example.com",
        admin_password=ADMIN_PASSWORD,
    )
    tenant = result.tenant
    provisioned = time.perf_counter() - started
    with tenant_context(tenant):
        staff = User.objects.create_user(
            LOGIN_EMAIL, args.password, username="bench-staff", full_name="Bench Staff",
            is_staff=True,
        )  # fmt: skip
        # The users list needs users.view: the staff user gets the tenant's admin role.
        from apps.rbac.models import Role, RoleAssignment

        RoleAssignment.objects.create(user=staff, role=Role.objects.get(system_key="admin"))
        encoded = staff.password
        started = time.perf_counter()
        shared_hash = make_password(args.password)  # one real hash, shared: setup only
        rng = random.Random(20240601)  # names, not secrets
        batch: list[User] = []
        for index in range(args.users):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            domain = DOMAINS[index % len(DOMAINS)]
            batch.append(
                User(
                    email=f"{first}.{last}.{index}@{domain}",
                    username=f"{first}{last}{index}",
                    full_name=f"{first.title()} {last.title()}",
                    password=shared_hash,
                    is_active=index % 50 != 0,
                )
            )
        User.objects.bulk_create(batch, batch_size=2000)
        inserted = time.perf_counter() - started
        live = User.objects.filter(is_deleted=False).count()
        query = search_query(args.search)
        matches = User.objects.filter(is_deleted=False, search_vector=query).count()

        # One check_password with the configured hashers (the login's verify), for reference;
        # identity.py times the verify itself again between its login rounds.
        for _ in range(3):
            check_password(args.password, encoded)
        seconds = []
        for _ in range(args.verifies):
            begun = time.perf_counter()
            ok = check_password(args.password, encoded)
            seconds.append(time.perf_counter() - begun)
        if not ok:
            raise SystemExit("check_password refused the staff user's own password")
        # The load generator's access token: a real sign-in (sessions.session_login, what the
        # login API calls), so the server's workers have signed nobody in before the
        # sign-in measurements (their memory "before any sign-in" is that).
        pair = session_login(
            email=LOGIN_EMAIL,
            password=args.password,
            client=ClientInfo(ip_address="127.0.0.1", user_agent="bench-identity"),
        )
        if not isinstance(pair, TokenPair):
            raise SystemExit("the bench's staff user has a second factor: no tokens")
    return {
        "slug": tenant.slug,
        "schema": tenant.schema_name,
        "host": result.domain.domain,
        "provision_seconds": provisioned,
        "login_email": LOGIN_EMAIL,
        "login_hash": encoded,
        "access_token": pair.access_token,
        "access_token_expires_in": pair.expires_in,
        "users_inserted": args.users,
        "insert_seconds": inserted,
        "live_users": live,
        "search": args.search,
        "search_matches": matches,
        "check_password_ms": [round(s * 1000, 3) for s in seconds],
        "check_password_median_ms": statistics.median(seconds) * 1000,
        "hasher": _hasher_facts(encoded),
    }


# ------------------------------------------------------------------ statements per request


def _post_environ(body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }


def cmd_count(args: argparse.Namespace) -> dict[str, Any]:
    """SQL statements and Redis round trips per request (warm process) through the WSGI
    application gunicorn serves, counted by `bench.django_tasks`' recorder; and the
    in-process time per request of every endpoint the load rounds compare."""
    from bench.django_tasks import _Recorder, _request

    os.environ["BENCH_REFERENCE_SCHEMA"] = args.schema
    recorder = _Recorder()
    recorder.install()
    from bench.wsgi import application

    auth = {"HTTP_AUTHORIZATION": f"Bearer {args.token}"}

    def query(text: str) -> dict[str, Any]:
        return {"QUERY_STRING": text}

    search = f"search={args.search}"
    cases: dict[str, tuple[str, str, dict[str, Any]]] = {
        "me": ("/api/v1/users/me", args.host, auth),
        "list_1": ("/api/v1/users", args.host, {**auth, **query("page_size=1")}),
        "list_20": ("/api/v1/users", args.host, {**auth, **query("page_size=20")}),
        "list_100": ("/api/v1/users", args.host, {**auth, **query("page_size=100")}),
        "search_1": ("/api/v1/users", args.host, {**auth, **query(f"page_size=1&{search}")}),
        "search_20": ("/api/v1/users", args.host, {**auth, **query(f"page_size=20&{search}")}),
        "search_100": ("/api/v1/users", args.host, {**auth, **query(f"page_size=100&{search}")}),
        "reference_list_20": ("/bench/users", "localhost", query("page_size=20")),
        "reference_search_20": ("/bench/users", "localhost", query(f"page_size=20&{search}")),
    }
    counts: dict[str, Any] = {}
    for label, (path, host, extra) in cases.items():
        with recorder.window() as (cold_sql, cold_redis):
            status = _request(application, path, host, extra)
        if status != 200:
            raise SystemExit(f"{label}: GET {path} answered {status}")
        for _ in range(5):
            _request(application, path, host, extra)  # warm: caches filled, statements prepared
        with recorder.window() as (sql, redis):
            for _ in range(args.requests):
                _request(application, path, host, extra)
        counts[label] = {
            "requests": args.requests,
            "sql_per_request": len(sql) / args.requests,
            "redis_per_request": len(redis) / args.requests,
            "sql": dict(Counter(sql)),
            "redis": dict(Counter(redis)),
            "first_request": {"sql": cold_sql, "redis": cold_redis},
        }

    # A login: what it costs besides the hash (every statement and round trip).
    body = json.dumps({"email": args.email, "password": args.password}).encode()

    def session_login() -> int:
        return _request(application, "/api/v1/auth/login", args.host, _post_environ(body))

    if session_login() != 200:
        raise SystemExit("POST /api/v1/auth/login failed")
    logins = 5
    with recorder.window() as (sql, redis):
        for _ in range(logins):
            session_login()
    counts["login"] = {
        "requests": logins,
        "sql_per_request": len(sql) / logins,
        "redis_per_request": len(redis) / logins,
        "sql": dict(Counter(sql)),
        "redis": dict(Counter(redis)),
    }

    timing: dict[str, float] = {}
    cpu_timing: dict[str, float] = {}
    timed: dict[str, tuple[str, str, dict[str, Any]]] = {
        "bare": ("/bench/bare", "localhost", {}),
        "drf": ("/bench/drf", "localhost", {}),
        "me": cases["me"],
        "reference_list": cases["reference_list_20"],
        "list": cases["list_20"],
        "reference_search": cases["reference_search_20"],
        "search": cases["search_20"],
    }
    for label, (path, host, extra) in timed.items():
        for _ in range(50):
            _request(application, path, host, extra)
        started = time.perf_counter()
        cpu_started = time.process_time()
        for _ in range(args.timing_requests):
            _request(application, path, host, extra)
        timing[label] = (time.perf_counter() - started) / args.timing_requests * 1e6
        cpu_timing[label] = (time.process_time() - cpu_started) / args.timing_requests * 1e6
    counts["in_process_us_per_request"] = timing
    # This process's CPU alone: the wall time above also holds the waits on PostgreSQL and
    # Redis (a round trip, and the server's turn on a busy machine).
    counts["in_process_cpu_us_per_request"] = cpu_timing
    return counts


# ------------------------------------------------------------------ argon2 memory


def _max_rss_kib() -> int:
    """This process's peak RSS so far. Linux's VmHWM belongs to this process's own memory
    map; ru_maxrss is not usable there, as Linux carries it over from the parent through
    fork and exec (it would start at the benchmark's own size)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    # macOS reports ru_maxrss in bytes, other systems in KiB.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def cmd_argon2_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS growth and time of one Argon2id hash (what a verify computes) in a fresh process."""
    from argon2.low_level import Type, hash_secret_raw

    secret, salt = b"correct-horse-battery-staple", b"0123456789abcdef"
    hash_secret_raw(
        secret, salt, time_cost=1, memory_cost=8, parallelism=1, hash_len=32, type=Type.ID
    )
    before = _max_rss_kib()
    started = time.perf_counter()
    hash_secret_raw(
        secret,
        salt,
        time_cost=args.time_cost,
        memory_cost=args.memory_cost,
        parallelism=args.parallelism,
        hash_len=32,
        type=Type.ID,
    )
    seconds = time.perf_counter() - started
    after = _max_rss_kib()
    return {
        "time_cost": args.time_cost,
        "memory_cost_kib": args.memory_cost,
        "parallelism": args.parallelism,
        "memory_from_parameters_mib": args.memory_cost / 1024,
        "peak_rss_growth_mib": (after - before) / 1024,
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup")
    setup.add_argument("--slug", required=True)
    setup.add_argument("--users", type=int, default=10_000)
    setup.add_argument("--search", default="mar")
    setup.add_argument("--password", required=True)
    setup.add_argument("--verifies", type=int, default=20)
    count = sub.add_parser("count")
    count.add_argument("--host", required=True)
    count.add_argument("--schema", required=True)
    count.add_argument("--token", required=True)
    count.add_argument("--search", required=True)
    count.add_argument("--email", required=True)
    count.add_argument("--password", required=True)
    count.add_argument("--requests", type=int, default=20)
    count.add_argument("--timing-requests", type=int, default=300)
    memory = sub.add_parser("argon2-memory")
    memory.add_argument("--time-cost", type=int, required=True)
    memory.add_argument("--memory-cost", type=int, required=True)
    memory.add_argument("--parallelism", type=int, required=True)
    args = parser.parse_args()
    commands: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "setup": cmd_setup,
        "count": cmd_count,
        "argon2-memory": cmd_argon2_memory,
    }
    if args.command != "argon2-memory":
        _setup_django()
    result = commands[args.command](args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
