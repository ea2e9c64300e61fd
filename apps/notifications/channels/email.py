"""E-mail through Django's mail backend: SMTP, files, locmem or a provider backend (anymail).

Which backend is `EMAIL_BACKEND`'s business (settings/base.py); this provider
builds the text + HTML message and sorts the backend's errors into transient
(connection trouble, 4xx SMTP replies, provider 5xx/429) and permanent (every
recipient refused, 5xx SMTP replies, provider 4xx).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import make_msgid

from apps.core.tracing import mail_send_span
from apps.notifications.channels.base import (
    NoAddress,
    OutboundMessage,
    PermanentProviderError,
    Provider,
    TransientProviderError,
)


class _Mail(EmailMultiAlternatives):
    """Django's message, with its MIME boundary chosen up front.

    The standard library's generator otherwise picks a random boundary and, to
    make sure the text does not contain it, compiles a new regular expression
    for every message (about a fifth of the time spent building one). A
    boundary of 128 random bits, drawn after the text exists, cannot be in it.
    """

    def message(self, *args: Any, **kwargs: Any) -> Any:
        msg = super().message(*args, **kwargs)
        if msg.is_multipart() and msg.get_boundary() is None:
            msg.set_boundary(f"=_{secrets.token_hex(16)}")
        return msg


def build_email(
    *, to: list[str], subject: str, text: str, html: str | None = None, message_id: str = ""
) -> EmailMultiAlternatives:
    mail = _Mail(
        subject=" ".join(subject.split()),  # a header: one line
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        headers={"Message-ID": message_id or make_msgid()},
    )
    if html:
        mail.attach_alternative(html, "text/html")
    return mail


def send_classified(mail: EmailMultiAlternatives, connection: Any = None) -> str:
    """Send one message; returns its id or raises a typed provider error."""
    try:
        with mail_send_span(connection, recipients=len(mail.recipients())):
            if connection is None:
                sent = mail.send()
            else:
                connection.open()  # reused across calls (a bulk send's chunk) once open
                sent = connection.send_messages([mail])
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentProviderError(f"recipient refused: {exc.recipients}") from exc
    except smtplib.SMTPAuthenticationError as exc:
        # The server is fine, our credentials are not: every message would fail the same way,
        # so let the breaker see it and keep the deliveries waiting until it is fixed.
        raise TransientProviderError(f"SMTP authentication failed: {exc.smtp_code}") from exc
    except smtplib.SMTPResponseException as exc:
        error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        if 500 <= exc.smtp_code < 600:
            raise PermanentProviderError(error) from exc
        raise TransientProviderError(error) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientProviderError(f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise _classify_backend_error(exc) from exc
    if not sent:
        raise PermanentProviderError("the mail backend accepted no recipient")
    status = getattr(mail, "anymail_status", None)  # anymail reports the provider's id
    provider_id = getattr(status, "message_id", None)
    return str(provider_id) if provider_id else str(mail.extra_headers["Message-ID"])


def _classify_backend_error(exc: Exception) -> Exception:
    # Provider backends (anymail) raise their own errors, carrying the HTTP status.
    if type(exc).__name__ == "AnymailRecipientsRefused":
        return PermanentProviderError(f"recipient refused: {exc}")
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return PermanentProviderError(f"{type(exc).__name__} {status}: {exc}")
    if status is not None or type(exc).__module__.startswith("anymail"):
        return TransientProviderError(f"{type(exc).__name__} {status}: {exc}")
    return exc


def _close_quietly(connection: Any) -> None:
    # QUIT on a connection that broke raises; the message's own error is what counts.
    with contextlib.suppress(smtplib.SMTPException, OSError):
        connection.close()


# A session's SMTP connection is kept open for the next session of the same process (a
# worker sending one welcome after another) if that one starts within this many seconds:
# far below the idle time servers allow (RFC 5321: 5 minutes).
KEEP_SMTP_SECONDS = 10.0


class _Kept(threading.local):
    connection: Any = None
    key: tuple[Any, ...] = ()
    used_at: float = 0.0


_kept = _Kept()


def _smtp_key() -> tuple[Any, ...]:
    return (
        os.getpid(),
        settings.EMAIL_BACKEND,
        settings.EMAIL_HOST,
        settings.EMAIL_PORT,
        settings.EMAIL_HOST_USER,
        settings.EMAIL_USE_TLS,
        settings.EMAIL_USE_SSL,
    )


def _connection_take() -> tuple[Any, bool]:
    """An open SMTP connection kept by the last session (and True), else a new one."""
    kept, _kept.connection = _kept.connection, None
    if kept is not None:
        if _kept.key == _smtp_key() and time.monotonic() - _kept.used_at < KEEP_SMTP_SECONDS:
            return kept, True
        if _kept.key[:1] == (os.getpid(),):  # a forked child leaves its parent's socket alone
            _close_quietly(kept)
    return get_connection(fail_silently=False), False


def _connection_give_back(connection: Any) -> None:
    if isinstance(connection, SmtpBackend) and connection.connection is not None:
        _kept.connection, _kept.key, _kept.used_at = connection, _smtp_key(), time.monotonic()
    else:
        _close_quietly(connection)


class DjangoMailProvider(Provider):
    name = "email"

    def send(self, message: OutboundMessage) -> str:
        return send_classified(self._mail(message))

    @contextlib.contextmanager
    def session(self) -> Iterator[Callable[[OutboundMessage], str]]:
        """One connection to the mail backend for every message sent through the yielded
        `send`; after a transient error it is closed and the next message opens a new one
        (a refused recipient leaves it open: the server is fine).

        An SMTP connection left open is kept for the process's next session (see
        KEEP_SMTP_SECONDS). Should the server have closed it meanwhile, the first
        message finds it disconnected before anything was sent, and goes once more
        over a new connection.
        """
        connection, reused = _connection_take()

        def send(message: OutboundMessage) -> str:
            nonlocal reused
            mail = self._mail(message)
            may_reconnect, reused = reused, False
            try:
                return send_classified(mail, connection)
            except TransientProviderError as exc:
                _close_quietly(connection)
                if not (
                    may_reconnect and isinstance(exc.__cause__, smtplib.SMTPServerDisconnected)
                ):
                    raise
            try:
                return send_classified(mail, connection)  # open() connects again
            except TransientProviderError:
                _close_quietly(connection)
                raise

        try:
            yield send
        except BaseException:
            _close_quietly(connection)
            raise
        else:
            _connection_give_back(connection)

    @staticmethod
    def _mail(message: OutboundMessage) -> EmailMultiAlternatives:
        address = message.recipient.email
        if not address:
            raise NoAddress("the user has no e-mail address")
        return build_email(
            to=[address], subject=message.subject, text=message.text, html=message.html
        )
