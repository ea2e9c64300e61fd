"""WSGI entry of the bare Django server (`bench.settings_bare`)."""

import os

# Always the bare settings, whatever the environment names.
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_bare"

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
