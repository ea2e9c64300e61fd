from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

from django.contrib.auth.hashers import Argon2PasswordHasher, verify_password


class PlatformArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with OWASP's minimum parameters: 19 MiB of memory, 2 passes, 1 lane.

    Django's default (100 MiB, 8 lanes) makes each concurrent sign-in hold
    100 MiB in a web worker; these parameters bound that at 19 MiB for the same
    guessing resistance per OWASP's password storage guidance. Hashes made with
    other parameters are re-hashed with these at the user's next sign-in.
    """

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1


# ------------------------------------------------------------------ verifying beside other work

_executor: ThreadPoolExecutor | None = None
_executor_pid = 0


def verify_in_background(password: str, encoded: str) -> Future[tuple[bool, bool]]:
    """Django's `verify_password(password, encoded)` on this process's hashing thread.

    The hash is C code that releases the GIL (argon2-cffi), so the caller can do other work
    meanwhile (sign-in prepares its writes). One thread per process: in a sync worker that is
    one hash at a time, as before, so a worker's memory stays bounded by one hash. The thread
    is made on first use in each process (never inherited across a fork)."""
    global _executor, _executor_pid
    if _executor is None or _executor_pid != os.getpid():
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password-hash")
        _executor_pid = os.getpid()
    return _executor.submit(verify_password, password, encoded)
