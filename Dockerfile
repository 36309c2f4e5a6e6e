# Two images from one file, both configured only through environment variables:
# - `training` (docker build --target training): the trainer processes (torch, TRL, PEFT, MLflow) that
#   PipesK8sClient runs in pods on GPU nodes. PyPI's Linux torch wheel carries the CUDA libraries;
#   the node provides the driver.
# - `serve` (docker build --target serve): the FastAPI model server of the champion (btc_platform/serving).
# - `platform` (the default, last stage): the code location; one image runs the webserver, the daemon
#   and the user code (choose with the command).
FROM python:3.11-slim AS base

ENV PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home

RUN pip install --no-cache-dir uv
WORKDIR /opt/btc_platform

# Dependencies first (cached across code changes), from the committed lock file.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project


FROM base AS training
RUN uv sync --frozen --no-dev --group training --no-install-project
COPY btc_platform ./btc_platform
RUN uv sync --frozen --no-dev --group training
# Weights come from the hub (or a mounted folder named by BTC_PLATFORM_BASE_MODEL) into this cache.
ENV HF_HOME=/opt/hf
# PipesK8sClient gives the trainer's command (python -m btc_platform.training.<name>); by default the
# image says which device torch sees.
CMD ["python", "-c", "import torch; print('cuda:', torch.cuda.is_available(), torch.version.cuda)"]


FROM base AS serve
RUN uv sync --frozen --no-dev --group serving --no-install-project
COPY btc_platform ./btc_platform
RUN uv sync --frozen --no-dev --group serving
# Models and the warehouse come from the environment: BTC_PLATFORM_MODELS_DIR (gs:// in production),
# BTC_PLATFORM_DUCKDB_PATH for /predict/latest; Cloud Run and Kubernetes set PORT.
ENV PORT=8080
EXPOSE 8080
CMD ["sh", "-c", "uvicorn btc_platform.serving.app:app --host 0.0.0.0 --port ${PORT}"]


FROM base AS platform
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
