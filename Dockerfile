# wizesync: the API (`serve`), a worker (`worker`) or a one-shot `migrate`, chosen by the command.
# The base is pinned by digest (the tag alone moves): refresh it with
#   docker buildx imagetools inspect python:3.11-slim-bookworm
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# Production unless told otherwise: the production guard then refuses development secrets,
# sandbox URLs and the rest (docs/SECURITY.md). Compose or `-e WIZESYNC_ENV=development` for
# a local try.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WIZESYNC_ENV=production

WORKDIR /app
COPY requirements-runtime.lock pyproject.toml README.md ./
COPY src ./src
# The alembic scripts, installed as `wizesync.migrations` (pyproject's package-dir).
COPY migrations ./migrations
# Every dependency at the locked version with its hash (`make lock`), then the package alone.
RUN pip install --require-hashes -r requirements-runtime.lock \
    && pip install --no-deps . && rm -rf /app/src /app/migrations

# Never run as root; the app writes nothing but its logs (to stderr).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin wizesync
USER wizesync
WORKDIR /home/wizesync

EXPOSE 8000
ENTRYPOINT ["wizesync"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
