# wizesync: the API (`serve`), a worker (`worker`) or a one-shot `migrate`, chosen by the command.
# Two targets: `production` (the default: the last stage) holds the product alone; `development`
# (docker compose --profile dev) adds the sandbox package, for `wizesync sandbox` and `wizesync dev`.
# The base is pinned by digest (the tag alone moves): refresh it with
#   docker buildx imagetools inspect python:3.11-slim-bookworm
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91 AS base

# Production unless told otherwise: the production guard then refuses development secrets,
# sandbox URLs and the rest (docs/SECURITY.md). Compose or `-e WIZESYNC_ENV=development` for
# a local try.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WIZESYNC_ENV=production

WORKDIR /app
# Every dependency at the locked version with its hash (`make lock`); the package comes after.
COPY requirements-runtime.lock ./
RUN pip install --require-hashes -r requirements-runtime.lock
# Never run as root; the app writes nothing but its logs (to stderr).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin wizesync
COPY pyproject.toml setup.py README.md ./
# The alembic scripts, installed as `wizesync.migrations` (setup.py's package_dir).
COPY migrations ./migrations

# The product and the sandbox (fake GHL, Wizehire and gateways: src/wizesync_sandbox).
FROM base AS development
COPY src ./src
RUN pip install --no-deps . && rm -rf /app/src /app/migrations
USER wizesync
WORKDIR /home/wizesync
EXPOSE 8000
ENTRYPOINT ["wizesync"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

# The product alone: the sandbox's source is never copied in, so the wheel holds only wizesync
# (`wizesync dev` and `wizesync sandbox` then say they are not installed); the build checks it.
FROM base AS production
COPY src/wizesync ./src/wizesync
RUN pip install --no-deps . && rm -rf /app/src /app/migrations \
    && ! python -c "import wizesync_sandbox" 2>/dev/null
USER wizesync
WORKDIR /home/wizesync
EXPOSE 8000
ENTRYPOINT ["wizesync"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
