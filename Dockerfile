# The production image: gunicorn for web, the same image for the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=platform_site.settings.production

WORKDIR /app
RUN useradd --create-home --uid 10001 app

# Dependencies first, so code changes do not reinstall them: the production lock
# (requirements/production.txt, compiled from pyproject.toml: the application and
# gunicorn), every version pinned and every file checked against its hash.
COPY requirements/production.txt ./requirements/production.txt
RUN pip install --require-hashes --no-deps -r requirements/production.txt

COPY manage.py gunicorn.conf.py ./
COPY platform_site ./platform_site
COPY apps ./apps
COPY templates ./templates

# Static files of the admin and Swagger UI, served by WhiteNoise. The values are
# build-time placeholders: collectstatic reads settings but connects to nothing.
RUN DJANGO_SECRET_KEY="build-only-placeholder-0123456789abcdefghijklmnopqrstuvwxyz" \
    DATABASE_URL="postgresql://build/unused" REDIS_URL="redis://build:6379/0" \
    ALLOWED_HOSTS="localhost" \
    python manage.py collectstatic --noinput -v 0

# Tenant export archives (TENANT_EXPORT_DIR in docker-compose.yml): a volume mounted here
# starts with this directory's owner, so the app user can write to it.
RUN mkdir -p /exports && chown app /exports && chmod 700 /exports

USER app
EXPOSE 8000
CMD ["gunicorn", "platform_site.wsgi:application", "--config", "gunicorn.conf.py"]
