"""Where trainer processes run, chosen by one setting (`BTC_PLATFORM_TRAINING_LAUNCHER`):

- `subprocess` (default): a local process on this machine, through `PipesSubprocessClient`;
- `k8s`: a pod on a GPU node pool, through dagster-k8s's `PipesK8sClient`. The pod runs the
  Dockerfile's `training` image, asks for `nvidia.com/gpu`, lands on the GPU nodes by node selector
  and tolerations, reads datasets and writes models on GCS, and gets its keys from a Secret.

Both speak Dagster Pipes with the same trainer modules (`python -m btc_platform.training.<name>`), so
metrics come back as materialization metadata either way.
"""


import json
import os
import sys

import dagster as dg

from btc_platform.config import env_int
from btc_platform.training.runtime import DEFAULT_MLFLOW_DIR, sqlite_tracking_uri

MODES = ("subprocess", "k8s")
# Variables a trainer reads that the launching process may hold (offline hubs, GCS emulator, MLflow).
PASSED_ENV = ("HF_HUB_OFFLINE", "HF_HOME", "TRANSFORMERS_OFFLINE", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT",
              "CUDA_VISIBLE_DEVICES")


class TrainingLauncherResource(dg.ConfigurableResource):
    """Runs a trainer module as a Pipes process: locally or in a Kubernetes pod on a GPU node."""

    mode: str = "subprocess"
    mlflow_tracking_uri: str = ""  # empty: a SQLite store under mlflow_dir
    mlflow_dir: str = DEFAULT_MLFLOW_DIR
    # Kubernetes (mode k8s)
    image: str = ""
    namespace: str = "dagster"
    gpus: int = 1
    cpu: str = "4"
    memory: str = "32Gi"
    node_selector: dict[str, str] = {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    tolerations_json: str = json.dumps([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    secret_name: str = "btc-platform-vendor-keys"
    service_account: str = ""

    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or sqlite_tracking_uri(self.mlflow_dir)

    def command(self, module: str) -> list[str]:
        """A trainer by its name under btc_platform.training, or any module by its dotted path."""
        python = sys.executable if self.mode == "subprocess" else "python"
        return [python, "-m", module if "." in module else f"btc_platform.training.{module}"]

    def env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)}
        env["MLFLOW_TRACKING_URI"] = self.tracking_uri()
        return env

    def pod_spec(self) -> dict:
        """The pod's spec beside what PipesK8sClient sets (image, command, Pipes env)."""
        resources = {"requests": {"cpu": self.cpu, "memory": self.memory},
                     "limits": {"memory": self.memory, **({"nvidia.com/gpu": str(self.gpus)} if self.gpus else {})}}
        spec = {
            "restartPolicy": "Never",
            "nodeSelector": dict(self.node_selector),
            "tolerations": json.loads(self.tolerations_json),
            "containers": [{
                "name": "trainer",
                "resources": resources,
                # Vendor and cloud keys from a Secret, never from run config.
                "envFrom": [{"secretRef": {"name": self.secret_name}}],
                "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
            }],
            # DataLoader workers and NCCL need more shared memory than the container default.
            "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}],
        }
        if self.service_account:  # Workload Identity: GCS access without key files
            spec["serviceAccountName"] = self.service_account
        return spec

    def pod_meta(self, model: str) -> dict:
        return {"labels": {"app.kubernetes.io/name": "btc-platform-trainer", "btc-platform/model": model}}

    def check_urls(self, *urls: str) -> None:
        if self.mode == "k8s":
            local = [u for u in urls if not u.startswith("gs://")]
            if local:
                raise dg.Failure(f"training in a Kubernetes pod needs datasets and models on gs:// "
                                 f"(BTC_PLATFORM_DATASETS_DIR, BTC_PLATFORM_MODELS_DIR); got {local}")
            if not self.image:
                raise dg.Failure("BTC_PLATFORM_TRAINING_IMAGE is not set: the pod needs the training image")
            if not self.mlflow_tracking_uri:
                raise dg.Failure("MLFLOW_TRACKING_URI is not set: a pod's local SQLite store would be lost with it")

    def k8s_client(self) -> dg.PipesClient:
        from dagster_k8s import PipesK8sClient

        return PipesK8sClient(load_incluster_config=True, poll_interval=10.0)

    def run(self, context: dg.AssetExecutionContext, module: str, extras: dict) -> dg.MaterializeResult:
        self.check_urls(extras["dataset_dir"], extras["model_dir"])
        if self.mode == "subprocess":
            invocation = dg.PipesSubprocessClient().run(
                command=self.command(module), context=context, extras=extras, env=self.env())
        elif self.mode == "k8s":
            invocation = self.k8s_client().run(
                context=context, extras=extras, image=self.image, command=self.command(module),
                namespace=self.namespace, env=self.env(), base_pod_meta=self.pod_meta(extras["model"]),
                base_pod_spec=self.pod_spec())
        else:
            raise dg.Failure(f"BTC_PLATFORM_TRAINING_LAUNCHER={self.mode!r}: expected one of {MODES}")
        return invocation.get_materialize_result()


def training_launcher_resource() -> TrainingLauncherResource:
    """The launcher from the environment; set variables are EnvVars (the UI shows names, not values)."""
    from btc_platform.defs.resources import env_or_default

    mode = os.environ.get("BTC_PLATFORM_TRAINING_LAUNCHER", "subprocess")
    if mode not in MODES:
        raise ValueError(f"BTC_PLATFORM_TRAINING_LAUNCHER={mode!r}: expected one of {MODES}")
    options = {}
    if os.environ.get("BTC_PLATFORM_TRAINING_NODE_SELECTOR"):
        options["node_selector"] = json.loads(os.environ["BTC_PLATFORM_TRAINING_NODE_SELECTOR"])
    if os.environ.get("BTC_PLATFORM_TRAINING_GPUS"):
        options["gpus"] = env_int("BTC_PLATFORM_TRAINING_GPUS")
    for field, var in (("image", "BTC_PLATFORM_TRAINING_IMAGE"), ("namespace", "BTC_PLATFORM_TRAINING_NAMESPACE"),
                       ("tolerations_json", "BTC_PLATFORM_TRAINING_TOLERATIONS"),
                       ("secret_name", "BTC_PLATFORM_TRAINING_SECRET"),
                       ("service_account", "BTC_PLATFORM_TRAINING_SERVICE_ACCOUNT"),
                       ("mlflow_tracking_uri", "MLFLOW_TRACKING_URI"), ("mlflow_dir", "BTC_PLATFORM_MLFLOW_DIR")):
        if os.environ.get(var):
            options[field] = env_or_default(var, "")
    return TrainingLauncherResource(mode=mode, **options)
