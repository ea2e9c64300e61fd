"""Structured logs: one JSON object per line, from our code, Django, Celery and gunicorn alike.

structlog does the formatting; the standard library's logging carries every
record, so third-party loggers come out in the same shape. Context bound with
`structlog.contextvars` (request_id, tenant, user, task) lands on every line
logged while it is bound.

No line may hold a password, token, secret or key, whatever fails. Tracebacks are
rendered without their frames' local variables (where a view's request data, a
service's password argument or a token sit), in JSON and console mode alike, for
our loggers and foreign ones (django.request, celery, gunicorn). Behind that,
`redact_secrets` rewrites every line before it is rendered: the value of any key
named like a secret (password, token, secret, key, authorization, cookie...), and
anything in the text that looks like one (a JWT, a bearer credential,
`password=...`, a URL's password, an OIDC `code` / `state` query parameter, a long
random token).
"""

from __future__ import annotations

import functools
import json as jsonlib
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from opentelemetry import trace
from structlog.dev import plain_traceback
from structlog.processors import ExceptionRenderer
from structlog.tracebacks import ExceptionDictTransformer


def add_trace_ids(logger: Any, method_name: str, event_dict: Any) -> Any:
    """structlog processor: the trace and span ids of the span being recorded (tracing on,
    apps/core/tracing.py), so that a log line leads to its trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    add_trace_ids,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

REDACTED = "[REDACTED]"

# ------------------------------------------------------------------ redaction

# A name (an event key, a dict key, a form field, a header, a query parameter) holds
# a secret when, without its separators, it contains one of these...
_SECRET_NAME_PARTS = (
    "passw",
    "passphrase",
    "secret",
    "token",
    "cookie",
    "credential",
    "authorization",
    "signature",
    "apikey",
    "privatekey",
)
# ...or has one of these as a word of its own ("key" and "auth" alone: not "keys",
# a list of cache keys, nor "author"; "sessionid", Django's cookie, not "session_id").
_SECRET_NAME_WORDS = frozenset(
    {"pwd", "key", "auth", "jwt", "dsn", "nonce", "verifier", "otp", "cvv", "sessionid"}
)
_NAME_WORD_RE = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_NAME_SEPARATORS_RE = re.compile(r"[\W_]+")

# What looks like a secret in a text, wherever it stands: a credential after its
# scheme (not a plain word after "basic"); a JWT (a JOSE header is JSON, so base64url
# `eyJ...`: our access and refresh tokens); the password of a URL
# (`postgres://user:...@host`); OIDC's `code` and `state` (and other one-time
# values) in a query string.
_SECRET_SHAPES_RE = re.compile(
    r"(?P<scheme>\b(?i:bearer|basic|digest)\s++)"
    r"(?P<scheme_value>(?=[A-Za-z0-9._~+/=-]*[A-Z0-9+/=_-])[A-Za-z0-9._~+/=-]{8,})"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]*+)"
    r"|(?P<url>\b[A-Za-z][A-Za-z0-9+.-]*+://[^\s/:@]*+:)(?P<url_value>[^\s/@]++)(?=@)"
    r"""|(?P<qs>[?&;](?i:code|state|key|sig|ticket|otp)=)(?P<qs_value>[^&#\s"'<>]++)"""
)
# `name=value`, `name: value`, `'name': 'value'`, `"name": "value"`: the value goes when
# the name is a secret's (`is_secret_name`). Possessive runs: one try per word.
_NAME_VALUE_RE = re.compile(
    r"""(?<![A-Za-z0-9_.-])(?P<name>[A-Za-z0-9_.-]++)(?P<sep>["']?+\s*+[:=]\s*+)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*+"|'(?:[^'\\]|\\.)*+'|"""
    r"""(?:(?i:bearer|basic|digest)\s++)?[^\s&;,"'()\[\]{}<>]++)"""
)
# A long random token (reset tokens, one-time codes, PKCE verifiers: token_urlsafe)
# is a run of 24 or more URL-safe characters mixing upper case, lower case and digits.
_LONG_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{24,}+")
_MAX_DEPTH = 12


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a value stored under `name` is a secret (by the name, not the value)."""
    compact = _NAME_SEPARATORS_RE.sub("", name).lower()
    if any(part in compact for part in _SECRET_NAME_PARTS):
        return True
    return any(word.lower() in _SECRET_NAME_WORDS for word in _NAME_WORD_RE.findall(name))


def _replace_shape(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind in ("scheme_value", "url_value", "qs_value"):
        return match.group(kind.removesuffix("_value")) + REDACTED
    return REDACTED


def _replace_name_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if not is_secret_name(match.group("name")):
        # The value may be a pair of its own: in "failed: password=x" it is "password=x".
        inner = _NAME_VALUE_RE.sub(_replace_name_value, value) if "=" in value else value
        return f"{match.group('name')}{match.group('sep')}{inner}"
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('name')}{match.group('sep')}{quote}{REDACTED}{quote}"


def _replace_long_token(match: re.Match[str]) -> str:
    run = match.group()
    mixed = not run.islower() and not run.isupper()
    return REDACTED if mixed and any(c.isdigit() for c in run) else run


def redact_text(text: str) -> str:
    """`text` with everything that looks like a secret replaced by [REDACTED]."""
    # Every shape but a long token needs one of these; most texts (a path) have none.
    if "=" in text or ":" in text or " " in text or "eyJ" in text:
        text = _SECRET_SHAPES_RE.sub(_replace_shape, text)
        text = _NAME_VALUE_RE.sub(_replace_name_value, text)
    if len(text) >= 24:
        text = _LONG_TOKEN_RE.sub(_replace_long_token, text)
    return text


_PLAIN_TYPES = (type(None), bool, int, float)


def redact_value(value: Any, _depth: int = 0) -> Any:
    """A copy of `value` (an event dict, a list, a string...) without secrets: values under
    secret names are replaced whole, texts are searched; other objects become their repr
    (what the renderers would write), searched too."""
    kind = type(value)
    if kind is str:
        return redact_text(value)
    if kind in _PLAIN_TYPES:
        return value
    if _depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {key: _redact_item(key, item, _depth + 1) for key, item in value.items()}
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item, _depth + 1) for item in value]
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("utf-8", "backslashreplace"))
    return redact_text(repr(value))


def _redact_item(key: Any, item: Any, depth: int) -> Any:
    if item is not None and type(key) is str and is_secret_name(key):
        return REDACTED
    return redact_value(item, depth)


def redact_secrets(logger: Any, method_name: str, event_dict: Any) -> Any:
    """structlog processor: the event dict without secrets (see `redact_value`)."""
    return redact_value(event_dict)


# Tracebacks without local variables: structlog's dict tracebacks show them by default.
_dict_tracebacks = ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
# Python's own traceback text (no locals), rendered before redaction so it is searched too.
_text_tracebacks = ExceptionRenderer()


def logging_config(*, json: bool, level: str) -> dict[str, Any]:
    """The LOGGING dict for Django settings; also configures structlog itself."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        # plain_traceback: never Rich's (it shows locals) if Rich happens to be installed.
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=plain_traceback)
    )
    structlog.configure(
        processors=[
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    _dict_tracebacks if json else _text_tracebacks,
                    redact_secrets,
                    renderer,
                ],
                "foreign_pre_chain": SHARED_PROCESSORS,
            }
        },
        "handlers": {
            "console": {
                "()": StructuredStreamHandler,
                "json": json,
                "formatter": "structured",
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's default logging gives `django` a plain stderr handler (with DEBUG
            # on) and mail_admins (a report with the frames' local variables): every
            # line goes through the root handler instead, formatted and redacted.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            # Our access log line replaces django.server's and django.request's
            # per-request lines; errors still come from django.request.
            "django.server": {"level": "WARNING"},
            "django.request": {"level": "ERROR"},
            "django.db.backends": {"level": "INFO"},
            "celery": {"level": level},
        },
    }


class StructuredStreamHandler(logging.StreamHandler):
    """The console handler: formats like any StreamHandler, except that a record which
    arrives already rendered as our JSON line (`log_rendered`) is written as it is."""

    def __init__(self, json: bool = True) -> None:
        super().__init__()
        self.writes_json = json

    def emit(self, record: logging.LogRecord) -> None:
        line = record.__dict__.get("rendered_json") if self.writes_json else None
        if line is None:
            super().emit(record)
            return
        try:
            self.stream.write(line + self.terminator)
            self.flush()
        except Exception:  # noqa: BLE001  (logging must never raise: the stdlib's own rule)
            self.handleError(record)


def log_rendered(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log `event` with `fields` as structlog's stdlib pipeline would, rendering it once.

    For a line written on every request (the access log): structlog's processors, the
    caller lookup and the formatter's copy of the record cost about 30 us per line, 120
    to 190 us at the end of a request (cold caches). The event dict here is the one
    SHARED_PROCESSORS would build (context variables, level, logger name, ISO UTC
    timestamp), redacted as every line is; `StructuredStreamHandler` writes its JSON
    as it is, and any other handler (a file, pytest's caplog) formats the record
    through the usual formatter.
    """
    if not logger.isEnabledFor(level):
        return
    event_dict: dict[str, Any] = {**fields, "event": event}
    event_dict.update(structlog.contextvars.get_contextvars())
    event_dict = redact_value(event_dict)  # what the caller gave; the rest is ours
    add_trace_ids(None, "", event_dict)
    event_dict["level"] = logging.getLevelName(level).lower()
    event_dict["logger"] = logger.name
    event_dict["timestamp"] = datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")
    record = logging.LogRecord(logger.name, level, __file__, 0, event_dict, None, None)
    # What structlog.stdlib.ProcessorFormatter.wrap_for_formatter attaches, so that
    # ProcessorFormatter takes `msg` as a structlog event dict.
    record._logger = logger
    record._name = event_dict["level"]
    record.rendered_json = jsonlib.dumps(event_dict, default=repr)
    logger.handle(record)
