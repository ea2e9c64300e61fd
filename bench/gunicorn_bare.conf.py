"""gunicorn settings of the baseline servers: 2 sync workers, no platform code.

Like the platform's `gunicorn.conf.py` they preload the application in the
master (so memory per worker is compared like for like), but they do not import
the platform's logging setup, which every forked worker would inherit.
"""

workers = 2
worker_class = "sync"
preload_app = True
errorlog = "-"
loglevel = "info"
