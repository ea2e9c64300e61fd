"""Steps of the MFA flows over the real API, shared by the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from tests.accounts.conftest import Api
from tests.accounts.factories import PASSWORD
from tests.mfa.conftest import FACTORS, LOGIN, VERIFY, TotpClock


@dataclass(frozen=True)
class Enrolled:
    factor_id: str
    secret: str
    recovery_codes: list[str]


def enrol_totp(api: Api, access_token: str, clock: TotpClock, name: str = "Phone") -> Enrolled:
    created = api.call("post", FACTORS, {"type": "totp", "name": name}, token=access_token)
    assert created.status_code == 201, created.content
    data = created.json()["data"]
    confirmed = api.call(
        "post",
        f"{FACTORS}/{data['id']}/confirm",
        {"code": clock.code(data["secret"])},
        token=access_token,
    )
    assert confirmed.status_code == 200, confirmed.content
    return Enrolled(data["id"], data["secret"], confirmed.json()["data"]["recovery_codes"] or [])


def login(api: Api, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = api.call("post", LOGIN, {"email": email, "password": password})
    assert response.status_code == 200, response.content
    return dict(response.json()["data"])


def verify(api: Api, mfa_token: str, method: str = "totp", **answer: Any) -> Any:
    return api.call("post", VERIFY, {"mfa_token": mfa_token, "method": method, **answer})


def claims(access_token: str) -> dict[str, Any]:
    """The access token's claims (its signature is the API's business; this reads them)."""
    return dict(jwt.decode(access_token, options={"verify_signature": False}))


def stepped_up(api: Api, access_token: str, method: str = "totp", **answer: Any) -> str:
    """A step-up of a signed-in session: the new access token, its factor verified now."""
    response = api.call("post", VERIFY, {"method": method, **answer}, token=access_token)
    assert response.status_code == 200, response.content
    return str(response.json()["data"]["access_token"])
