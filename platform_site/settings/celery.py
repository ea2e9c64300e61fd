"""Celery: the broker, how workers take and run tasks, and beat's schedule store."""

from platform_site.env import env_int, env_str, redis_db_url, redis_url

# The broker: CELERY_BROKER_URL (RabbitMQ amqp:// or Redis), else the cache's
# Redis server on the next database number, so a cache flush never drops queued tasks.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or redis_db_url(redis_url(), 1)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_TENANT_CACHE_SECONDS = 30
CELERY_TIMEZONE = "UTC"

# Redis broker: an unacknowledged task (worker killed) is redelivered after the visibility
# timeout, looked for every `unacked_restore_interval` seconds (kombu would otherwise look
# only every 100 s). `socket_connect_timeout` and the publish retry policy bound how long a
# request waits on a broker that is down: the event stays in the outbox and the relay sends
# it later.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT * 2),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
    # A worker killed while it sweeps holds the sweep's lock until this expires, and no
    # worker restores anything meanwhile (kombu's default: 5 minutes). A sweep takes
    # milliseconds.
    "unacked_mutex_expire": env_int("CELERY_UNACKED_MUTEX_EXPIRE", 30),
    "socket_connect_timeout": 3,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# A task still running when the broker connection drops is redelivered anyway
# (acks late): stop it rather than let two copies run.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True

# Celery would close the database connection around every task; platform_site/celery.py
# instead closes it as Django does between requests (unusable, or older than
# DB_CONN_MAX_AGE). This only stops Celery's own closing until this many tasks.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 100_000)
