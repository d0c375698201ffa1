# The code location image of the cluster profile: the user-code deployment of Dagster's Helm
# chart (`dagster api grpc`), the run pods it launches, and the Celery workers all run it, so a
# step executes the same code wherever it lands. Build from the repository root:
#   docker build -t booking-platform:$(git rev-parse --short HEAD) .
# (No Docker daemon is reachable on the machines this project was built on: the image was not
# built there. See deploy/README.md.)
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    BOOKING_PLATFORM_PROFILE=cluster \
    BOOKING_PLATFORM_HOME=/opt/dagster/data

# LightGBM needs OpenMP at run time
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir uv

WORKDIR /opt/booking_platform
# the locked environment first (a layer that changes only with the lock), then the code
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY booking_platform ./booking_platform
COPY dagster-cluster.yaml workspace.yaml ./
RUN uv sync --frozen --no-dev \
    && mkdir -p "$DAGSTER_HOME" "$BOOKING_PLATFORM_HOME" \
    && cp dagster-cluster.yaml "$DAGSTER_HOME/dagster.yaml"

# an unprivileged user; the data home is only scratch space (tables, models and step outputs
# live in PostgreSQL, the MLflow server and the object store)
RUN useradd --uid 10001 --create-home booking \
    && chown -R booking "$DAGSTER_HOME" "$BOOKING_PLATFORM_HOME"
USER booking

EXPOSE 3030
# the code server; the Helm chart passes the same arguments (dagsterApiGrpcArgs)
CMD ["dagster", "api", "grpc", "--module-name", "booking_platform.definitions", \
     "--host", "0.0.0.0", "--port", "3030"]
