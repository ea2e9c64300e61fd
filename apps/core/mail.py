"""Local mail as files a mail client opens: one `<timestamp>-<id>.eml` per message.

Django's filebased backend appends every message of a connection to one `.log`
file with separators, which no mail client reads. Development settings use this
backend when no mail server is configured (EMAIL_HOST unset); production
insists on SMTP or another real backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage


class EmlFileBackend(BaseEmailBackend):
    def __init__(
        self, *, file_path: str | None = None, fail_silently: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        folder = file_path or getattr(settings, "EMAIL_FILE_PATH", None)
        if not folder:
            raise ImproperlyConfigured("EmlFileBackend needs EMAIL_FILE_PATH")
        self.folder = Path(folder).resolve()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            try:
                self._write(message)
            except OSError:
                if not self.fail_silently:
                    raise
            else:
                sent += 1
        return sent

    def _write(self, message: EmailMessage) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Sorts by time; the id keeps two messages of one microsecond apart.
        stamp = datetime.now(tz=UTC).strftime("%Y%m%d-%H%M%S-%f")
        name = f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
        path = self.folder / name
        temporary = self.folder / f".{name}.part"
        # Mail holds reset and confirmation links: readable by the owner only. Written
        # aside and renamed, so whoever watches the folder never opens half a message.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.message().as_bytes())
        os.replace(temporary, path)
        return path
