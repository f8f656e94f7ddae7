# One image for the worker, the API, the provider sandbox and the migration job of
# docker-compose.yml.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY streams ./streams
COPY agents ./agents
COPY api ./api
COPY sandbox ./sandbox
RUN pip install --no-cache-dir .

RUN useradd --create-home --uid 10001 tributary && mkdir -p /data && chown tributary /data
USER tributary
ENV TRIBUTARY_WORKER_DATA_DIR=/data
