"""The WSGI application the benchmark's platform server runs: the platform, plus two references.

`/bench/...` paths go to a Django `WSGIHandler` whose middleware chain is empty
and whose URLconf is `bench.urls_reference` (a bare `JsonResponse` view, a
plain DRF view and the identity benchmark's plain DRF users list); every other path goes to the platform's own WSGI application,
unchanged, with its full middleware stack (request context and access log,
CORS, tenant resolution, security, WhiteNoise, sessions, CSRF, auth, rate
limit, ...). Both run in the same gunicorn workers, so a baseline and the
platform are measured on the same server, process and settings, in the same
run. The dispatch costs the platform one dictionary lookup and one string
comparison per request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponseBase

REFERENCE_PREFIX = "/bench/"

platform_application = get_wsgi_application()


class ReferenceHandler(WSGIHandler):
    """Django's WSGI handler with no middleware at all and the benchmark's reference URLconf.

    Django's request_started / request_finished signals still fire (they are
    part of any Django server), but no platform middleware runs. The one thing
    done here that a middleware would do: a Content-Length header, as the
    platform's responses get from CommonMiddleware, so gunicorn does not fall
    back to chunked encoding (an extra write per response) for the baseline only.
    """

    urlconf = "bench.urls_reference"

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        self._middleware_chain = convert_exception_to_response(self._resolve_in_urlconf)

    def _resolve_in_urlconf(self, request: HttpRequest) -> HttpResponseBase:
        request.urlconf = self.urlconf  # type: ignore[attr-defined]
        # BaseHandler._get_response: resolve the URL, run the view (untyped in django-stubs).
        response: HttpResponseBase = self._get_response(request)  # type: ignore[attr-defined]
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
        return response


reference_application = ReferenceHandler()

StartResponse = Callable[..., Any]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ.get("PATH_INFO", "").startswith(REFERENCE_PREFIX):
        return reference_application(environ, start_response)
    return platform_application(environ, start_response)
