# wizesync: the API (`serve`), a worker (`worker`) or a one-shot `migrate`, chosen by the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && rm -rf /app/src

# Never run as root; the app writes nothing but its logs (to stderr).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin wizesync
USER wizesync
WORKDIR /home/wizesync

EXPOSE 8000
ENTRYPOINT ["wizesync"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
