from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest

from tests.accounts.conftest import Api, api_a, api_b, member_a, staff_a  # noqa: F401  (fixtures)
from tests.sso.conftest import make_provider, op, sign_in  # noqa: F401  (test_sso_amr.py)

ME = "/api/v1/users/me"
FACTORS = "/api/v1/auth/mfa/factors"
VERIFY = "/api/v1/auth/mfa/verify"
LOGIN = "/api/v1/auth/login"


class TotpClock:
    """The clock the TOTP check reads (held still; `advance` moves it), and the codes an
    authenticator app would show at it."""

    def __init__(self, now: float) -> None:
        # The middle of a 30 s step, so step +-1 are whole steps away.
        self.now = (now // 30) * 30 + 15

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def code(self, secret: str, *, steps: int = 0) -> str:
        return pyotp.TOTP(secret).at(self.now + 30 * steps)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def totp_clock(monkeypatch: pytest.MonkeyPatch) -> TotpClock:
    clock = TotpClock(time.time())
    monkeypatch.setattr("apps.mfa.services.verify.time", clock)
    return clock
