# Tocsin: gunicorn serving config.wsgi:application (the ping fast path in front of Django).
# The same image runs the Celery worker and beat; see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TOCSIN_VAR_DIR=/app/var

WORKDIR /app

# Dependencies in their own layer, so that a code change does not reinstall them: an editable
# install of two empty packages pulls every dependency from pyproject.toml and points `config`
# and `apps` at /app, where the real code lands next.
COPY pyproject.toml README.md ./
RUN mkdir config apps \
    && touch config/__init__.py apps/__init__.py \
    && pip install -e . \
    && rm -rf config apps

COPY manage.py ./
COPY config ./config
COPY apps ./apps
COPY templates ./templates
COPY static ./static

# Static files are collected into the image and served by whitenoise. The key below only lets
# the settings load for this one command (DEBUG is off); the container must be given its own.
RUN SECRET_KEY=collectstatic-only-not-used-at-run-time python manage.py collectstatic --noinput \
    && useradd --system --no-create-home --home-dir /app tocsin \
    && mkdir -p /app/var \
    && chown -R tocsin /app/var

USER tocsin
EXPOSE 8000
# Threaded workers, so slow clients cannot hold every worker (config/gunicorn.py): worker
# processes from WEB_CONCURRENCY, threads each from WEB_THREADS; more options through
# GUNICORN_CMD_ARGS.
CMD ["gunicorn", "--config", "python:config.gunicorn", "config.wsgi:application"]
