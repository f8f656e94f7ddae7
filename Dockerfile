# One image for the worker, the API, the provider sandbox and the migration job of
# docker-compose.yml.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

# As `make install` does: every dependency at the lock file's version and hashes (a layer that
# outlives code changes), then the project itself without resolving anything further.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

# The wheel is built from a copy outside the working directory, then removed: the processes
# import the installed packages, so whatever the packaging leaves out is missing here too.
COPY pyproject.toml README.md /build/
COPY schemas /build/schemas
COPY streams /build/streams
COPY agents /build/agents
COPY api /build/api
RUN pip install --no-cache-dir --no-deps /build && rm -rf /build

# The provider sandbox is a test double, kept out of the wheel: `python -m sandbox` (compose's
# sandbox service) finds it here because `-m` puts the working directory first on sys.path.
COPY sandbox ./sandbox

RUN useradd --create-home --uid 10001 tributary && mkdir -p /data && chown tributary /data
USER tributary
ENV TRIBUTARY_WORKER_DATA_DIR=/data
