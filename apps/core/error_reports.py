"""Django's error reports (the DEBUG page, mail_admins) without secrets.

Django hides secrets in its reports only with DEBUG off, and then only what views
mark with `sensitive_variables` / `sensitive_post_parameters`; the DEBUG page shows
every frame's local variables (a sign-in's password, the SQL parameters holding a
session key), the form, the query string (an OIDC callback's code and state) and the
request's headers. Here, always: frames list their variables' names, not their values
(as the logs' tracebacks show none); whatever is named like a secret is hidden
(`is_secret_name`, and Django's own names); what looks like one is redacted
(`redact_text`). Settings: DEFAULT_EXCEPTION_REPORTER_FILTER, DEFAULT_EXCEPTION_REPORTER.

Imported while logging is configured, before the apps are loaded: Django's debug views
and apps.core.logging only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest, QueryDict
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from apps.core.logging import is_secret_name, redact_text

SUBSTITUTE = SafeExceptionReporterFilter.cleansed_substitute
# Query parameters that are secrets without a secret's name (OAuth / OIDC).
_SECRET_PARAMETERS = frozenset({"code", "state", "id_token_hint"})


def _is_hidden(name: Any) -> bool:
    return isinstance(name, str) and (
        is_secret_name(name)
        or name in _SECRET_PARAMETERS
        or bool(SafeExceptionReporterFilter.hidden_settings.search(name))
    )


def _cleansed(items: Iterable[tuple[Any, list[Any]]]) -> QueryDict:
    """Form fields or query parameters, with secrets hidden."""
    cleansed = QueryDict(mutable=True)
    for name, values in items:
        cleansed.setlist(
            name,
            [
                SUBSTITUTE
                if _is_hidden(name)
                else (redact_text(value) if isinstance(value, str) else value)
                for value in values
            ],
        )
    return cleansed


class SecretsHidingReporterFilter(SafeExceptionReporterFilter):
    """Django's filter for its error reports, active with DEBUG on too."""

    def is_active(self, request: HttpRequest | None) -> bool:
        return True

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        if _is_hidden(key):
            return self.cleansed_substitute
        cleansed = super().cleanse_setting(key, value)
        return redact_text(cleansed) if isinstance(cleansed, str) else cleansed

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        if isinstance(meta.get("QUERY_STRING"), str) and meta["QUERY_STRING"]:
            query = QueryDict(meta["QUERY_STRING"])
            meta["QUERY_STRING"] = _cleansed(query.lists()).urlencode(safe="*")
        return meta

    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        if request is None:
            return {}
        return _cleansed(request.POST.lists())

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]


class SecretsHidingExceptionReporter(ExceptionReporter):
    """Django's error report, with the parts its filter never sees hidden too: the query
    string (an OIDC callback's code and state), the exception's message and its causes."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        if self.request is not None:
            data["request_GET_items"] = _cleansed(self.request.GET.lists()).items()
            data["request_insecure_uri"] = redact_text(str(data["request_insecure_uri"]))
        if "exception_value" in data:
            data["exception_value"] = redact_text(str(data["exception_value"]))
        for frame in data.get("frames", []):
            if frame.get("exc_cause") is not None:
                frame["exc_cause"] = redact_text(str(frame["exc_cause"]))
        return data
