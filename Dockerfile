# The btc_platform code location: one image runs the webserver, the daemon and the user code
# (choose with the command), configured only through environment variables.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home

RUN pip install --no-cache-dir uv
WORKDIR /opt/btc_platform

# Dependencies first (cached across code changes), from the committed lock file.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY btc_platform ./btc_platform
COPY dbt_project ./dbt_project
COPY workspace.yaml ./
# The production instance (Postgres, Kubernetes run launcher), configured by environment variables.
COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml
RUN uv sync --frozen --no-dev \
    && mkdir -p "$DAGSTER_HOME" \
    # The dbt manifest is built at image build time, so the code location loads without parsing.
    && cd dbt_project && dbt parse --profiles-dir . --target-path target

EXPOSE 3000 4000
# Default: the gRPC code server (user code). Webserver: `dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.yaml`;
# daemon: `dagster-daemon run -w workspace.yaml`.
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "btc_platform.definitions"]
