from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


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
