"""The stock stack's WSGI application (bench.settings_stock), for the scale benchmark."""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_stock"

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
