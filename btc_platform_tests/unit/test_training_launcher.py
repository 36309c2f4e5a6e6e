"""Where trainers run: the setting that picks the launcher, and the GPU pod it would ask Kubernetes for.

There is no cluster here: the pod is checked as dagster-k8s builds it from what the launcher passes
(`build_pod_body`, the function PipesK8sClient itself calls), and against the Kubernetes API's own models.
"""

import json

import dagster as dg
import pytest
from dagster_k8s.pipes import build_pod_body
from kubernetes.client import ApiClient, V1Pod

from btc_platform.defs.training.launcher import TrainingLauncherResource, training_launcher_resource

GCS = {"dataset_dir": "gs://bucket/datasets/training_splits_1h/version=abc",
       "model_dir": "gs://bucket/models/lstm_1h/dataset=abc/config=123", "model": "lstm_1h"}


class Recorded(Exception):
    pass


def launched_pod(launcher: TrainingLauncherResource, extras: dict, monkeypatch) -> tuple[dict, dict]:
    """The arguments the launcher hands PipesK8sClient.run, and the pod dagster-k8s builds from them."""
    seen = {}

    class Client:
        def run(self, **kwargs):
            seen.update(kwargs)
            raise Recorded()

    monkeypatch.setattr(TrainingLauncherResource, "k8s_client", lambda self: Client())
    with pytest.raises(Recorded):
        launcher.run(context=None, module="lstm", extras=extras)
    pod = build_pod_body(pod_name="dagster-pipes-x", image=seen["image"], command=seen["command"],
                         env_vars={**seen["env"], "DAGSTER_PIPES_CONTEXT": "c", "DAGSTER_PIPES_MESSAGES": "m"},
                         base_pod_meta=seen["base_pod_meta"], base_pod_spec=seen["base_pod_spec"])
    return seen, ApiClient().sanitize_for_serialization(pod)


def test_subprocess_is_the_default(monkeypatch):
    for var in ("BTC_PLATFORM_TRAINING_LAUNCHER", "MLFLOW_TRACKING_URI", "BTC_PLATFORM_MLFLOW_DIR"):
        monkeypatch.delenv(var, raising=False)
    launcher = training_launcher_resource()
    assert launcher.mode == "subprocess"
    assert launcher.command("lstm")[1:] == ["-m", "btc_platform.training.lstm"]
    assert launcher.env()["MLFLOW_TRACKING_URI"].startswith("sqlite:///")
    assert launcher.env()["MLFLOW_TRACKING_URI"].endswith("data/mlflow/mlflow.db")


def test_an_unknown_launcher_is_refused(monkeypatch):
    monkeypatch.setenv("BTC_PLATFORM_TRAINING_LAUNCHER", "slurm")
    with pytest.raises(ValueError, match="BTC_PLATFORM_TRAINING_LAUNCHER='slurm'"):
        training_launcher_resource()


def test_gpu_pod_from_the_environment(monkeypatch):
    monkeypatch.setenv("BTC_PLATFORM_TRAINING_LAUNCHER", "k8s")
    monkeypatch.setenv("BTC_PLATFORM_TRAINING_IMAGE", "europe-docker.pkg.dev/p/r/btc-platform-training:abc")
    monkeypatch.setenv("BTC_PLATFORM_TRAINING_GPUS", "2")
    monkeypatch.setenv("BTC_PLATFORM_TRAINING_NODE_SELECTOR", json.dumps({"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}))
    monkeypatch.setenv("BTC_PLATFORM_TRAINING_SECRET", "trainer-keys")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.ml.svc:5000")
    launcher = training_launcher_resource()
    # Set variables stay EnvVars until the resource is resolved (the UI shows names, not values).
    assert isinstance(launcher.image, dg.EnvVar)
    with dg.build_resources({"training_launcher": launcher}) as resources:
        seen, pod = launched_pod(resources.training_launcher, GCS, monkeypatch)
    [container] = pod["spec"]["containers"]
    assert container["image"] == "europe-docker.pkg.dev/p/r/btc-platform-training:abc"
    assert container["command"] == ["python", "-m", "btc_platform.training.lstm"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["envFrom"] == [{"secretRef": {"name": "trainer-keys"}}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.ml.svc:5000"
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= set(env)
    assert pod["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["labels"]["btc-platform/model"] == "lstm_1h"
    assert seen["extras"] == GCS
    # The body is a valid Pod for the Kubernetes API client.
    assert ApiClient()._ApiClient__deserialize(pod, V1Pod).spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"


@pytest.mark.parametrize("extras, message", [
    ({**GCS, "dataset_dir": "/home/me/data/datasets/x"}, "needs datasets and models on gs://"),
    ({**GCS, "model_dir": "./data/models/lstm_1h"}, "needs datasets and models on gs://"),
])
def test_a_pod_cannot_read_this_machines_folders(extras, message, monkeypatch):
    launcher = TrainingLauncherResource(mode="k8s", image="img", mlflow_tracking_uri="http://mlflow:5000")
    with pytest.raises(dg.Failure, match=message):
        launched_pod(launcher, extras, monkeypatch)


def test_a_pod_needs_its_image_and_a_shared_tracking_server(monkeypatch):
    with pytest.raises(dg.Failure, match="BTC_PLATFORM_TRAINING_IMAGE"):
        TrainingLauncherResource(mode="k8s", mlflow_tracking_uri="http://m").check_urls(GCS["dataset_dir"])
    with pytest.raises(dg.Failure, match="MLFLOW_TRACKING_URI"):
        TrainingLauncherResource(mode="k8s", image="img").check_urls(GCS["dataset_dir"])
