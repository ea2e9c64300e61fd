"""The mails of invitations and e-mail changes, read from a real SMTP server that a real
worker sent them to, the links followed over real HTTP."""

from __future__ import annotations

import re
import uuid
from email.message import Message

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.jobs import processes

pytestmark = [pytest.mark.worker, pytest.mark.django_db]
PASSWORD = "a-good-long-passphrase"


def _body(message: Message) -> str:
    part = message.get_payload(0) if message.is_multipart() else message
    assert isinstance(part, Message)
    return bytes(part.get_payload(decode=True)).decode()


def _mail(smtp, to: str, subject_part: str) -> Message:
    found = processes.wait_for(
        lambda: [m for m in smtp.to(to) if subject_part in str(m["Subject"])],
        timeout=30,
        what=f"the mail '{subject_part}' to {to}",
    )
    return found[-1]


def _token(message: Message) -> str:
    [token] = re.findall(r"token=(\S+)", _body(message))
    return token


def test_an_e_mail_change_mails_the_link_to_the_new_address_and_the_notices_to_the_old(
    jobs_tenant, jobs_web, smtp
) -> None:
    api = jobs_web.api(jobs_tenant.host)
    api.login(jobs_tenant.admin_email, ADMIN_PASSWORD)
    old = f"old-{uuid.uuid4().hex[:8]}@mail.test"
    new = f"new-{uuid.uuid4().hex[:8]}@mail.test"
    status, body = api.call(
        "POST",
        "/api/v1/users",
        {"email": old, "username": old.split("@")[0], "password": PASSWORD,
         "password_confirm": PASSWORD},
    )  # fmt: skip
    assert status == 201, body
    user_id = body["data"]["id"]

    status, body = api.call("PATCH", f"/api/v1/users/{user_id}", {"email": new})
    assert status == 200 and body["data"]["email"] == old, body

    link = _mail(smtp, new, "Confirm your new sign-in address")
    notice = _mail(smtp, old, "change of your sign-in address was requested")
    assert new in _body(notice) and "token=" not in _body(notice)
    assert f"://{jobs_tenant.host}" in _body(link)

    # Until the link is followed the old address is the one that signs in.
    anonymous = jobs_web.api(jobs_tenant.host)
    status, _ = anonymous.call("POST", "/api/v1/auth/login", {"email": new, "password": PASSWORD})
    assert status == 401
    status, body = anonymous.call("POST", "/api/v1/auth/email/confirm", {"token": _token(link)})
    assert status == 200, body
    changed = _mail(smtp, old, "Your sign-in address was changed")
    assert new in _body(changed)
    anonymous.login(new, PASSWORD)


def test_an_invitation_is_mailed_by_the_worker_and_its_link_signs_the_invitee_in(
    jobs_tenant, jobs_web, smtp
) -> None:
    api = jobs_web.api(jobs_tenant.host)
    api.login(jobs_tenant.admin_email, ADMIN_PASSWORD)
    email = f"invitee-{uuid.uuid4().hex[:8]}@mail.test"
    status, body = api.call("POST", "/api/v1/invitations", {"email": email, "roles": ["admin"]})
    assert status == 201, body

    message = _mail(smtp, email, "You are invited to join")
    assert jobs_tenant.tenant.name in str(message["Subject"])
    invitee = jobs_web.api(jobs_tenant.host)
    accept = {"token": _token(message), "password": PASSWORD, "full_name": "In Vitee"}
    status, body = invitee.call("POST", "/api/v1/invitations/accept", accept)
    assert status == 200, body
    invitee.token = body["data"]["access_token"]
    status, me = invitee.call("GET", "/api/v1/users/me/permissions")
    assert status == 200, me
    assert "users.manage" in str(me["data"])
    status, again = invitee.call("POST", "/api/v1/invitations/accept", accept)
    assert status == 422 and again["error"]["code"] == "INVITATION_INVALID"
