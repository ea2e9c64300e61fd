import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings.production")

application = get_wsgi_application()


def _import_what_the_first_request_would() -> None:
    """Load both URL trees (and with them DRF, drf-spectacular and the admin) now.

    gunicorn preloads this module in its master (gunicorn.conf.py), so whatever
    is imported here is shared by every worker instead of each worker loading
    its own copy on its first request.
    """
    from django.conf import settings
    from django.urls import get_resolver

    for urlconf in (settings.ROOT_URLCONF, getattr(settings, "PUBLIC_SCHEMA_URLCONF", None)):
        if urlconf:
            get_resolver(urlconf).reverse_dict  # noqa: B018  (builds the resolver's caches)


_import_what_the_first_request_would()
