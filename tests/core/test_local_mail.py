"""Local mail: one .eml file per message, which a mail client (or Python's parser) opens."""

from __future__ import annotations

import email
import stat
from email import policy
from pathlib import Path

from django.core.mail import EmailMultiAlternatives, get_connection

from apps.core.mail import EmlFileBackend


def test_each_message_is_its_own_eml_file_readable_by_its_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    connection = get_connection("apps.core.mail.EmlFileBackend", file_path=str(folder))
    first = EmailMultiAlternatives("Welcome", "Hello, Ann", "from@x.test", ["ann@x.test"])
    first.attach_alternative("<p>Hello, Ann</p>", "text/html")
    second = EmailMultiAlternatives("Reset", "Your link", "from@x.test", ["bob@x.test"])

    assert connection.send_messages([first, second]) == 2

    files = sorted(folder.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    parsed = [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert {(m["To"], m["Subject"]) for m in parsed} == {
        ("ann@x.test", "Welcome"),
        ("bob@x.test", "Reset"),
    }
    welcome = next(m for m in parsed if m["Subject"] == "Welcome")
    plain, html = welcome.get_body(("plain",)), welcome.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "Hello, Ann"
    assert html is not None and "<p>Hello, Ann</p>" in html.get_content()


def test_a_message_without_recipients_writes_nothing(tmp_path: Path) -> None:
    backend = EmlFileBackend(file_path=str(tmp_path))
    assert backend.send_messages([EmailMultiAlternatives("x", "y", "from@x.test", [])]) == 0
    assert list(tmp_path.iterdir()) == []
