"""The production deployment files: the instance config validates against Dagster's own schemas, and
the image copies only what the repository has. (No Docker engine or cluster here: see README.)"""

import importlib
import re
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROD_ENV = {
    "DAGSTER_PG_HOST": "postgres", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USERNAME": "dagster", "DAGSTER_PG_PASSWORD": "secret", "DAGSTER_K8S_NAMESPACE": "btc-platform",
    "DAGSTER_K8S_SERVICE_ACCOUNT": "dagster", "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
    "DAGSTER_HOME": "/opt/dagster/home", "BTC_PLATFORM_COMPUTE_LOG_BUCKET": "btc-platform-logs",
}


def configured_classes(config: dict):
    """(section, class, its config) for each pluggable class the instance config names."""
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    for cls in (PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage):
        yield "storage", cls, config["storage"]["postgres"]
    for section in ("run_launcher", "compute_logs"):
        entry = config[section]
        yield section, getattr(importlib.import_module(entry["module"]), entry["class"]), entry["config"]


@pytest.fixture
def prod_env(monkeypatch):
    for name, value in PROD_ENV.items():
        monkeypatch.setenv(name, value)


def test_production_instance_config_validates(prod_env):
    config, _ = dagster_instance_config(str(DEPLOY))  # the instance-level schema
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    for section, cls, value in configured_classes(config):
        result = process_config(resolve_to_config_type(cls.config_type()), value)
        assert result.success, f"{section} {cls.__name__}: {[e.message for e in result.errors]}"


def test_a_missing_variable_is_named(prod_env, monkeypatch):
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    config, _ = dagster_instance_config(str(DEPLOY))
    section, cls, value = next(configured_classes(config))
    result = process_config(resolve_to_config_type(cls.config_type()), value)
    assert not result.success
    assert any("DAGSTER_PG_PASSWORD" in e.message for e in result.errors)


def test_dockerfile_copies_what_the_repository_has():
    dockerfile = (ROOT / "Dockerfile").read_text()
    sources = [src for line in re.findall(r"^COPY (.+)$", dockerfile, flags=re.M)
               for src in line.split()[:-1] if not src.startswith("--")]
    assert "deploy/dagster.yaml" in sources and "uv.lock" in sources
    for src in sources:
        assert (ROOT / src).exists(), f"Dockerfile copies {src}, which the repository lacks"


def test_helm_values_run_this_image_as_the_user_code_deployment():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "btc_platform.definitions"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    env_names = {e["name"] for e in deployment["env"]}
    assert {"BTC_PLATFORM_LAKE_URL", "BTC_PLATFORM_WAREHOUSE"} <= env_names
