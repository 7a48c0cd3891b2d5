"""The labels, annotations, names and resource keys shared by every Stretto part.

The operator writes them on worker Pods, the scheduler extender reads and adds to them at bind
time, the node daemon reads them to learn each container's GPU share. Keeping them in one module
means a rename cannot leave one part speaking an old dialect. Pure constants and tiny codecs: no
Kubernetes imports, so the core and the C-facing daemon can share it.
"""

from __future__ import annotations

GROUP = "stretto.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
TRAININGJOB_KIND = "TrainingJob"
TRAININGJOB_PLURAL = "trainingjobs"
TRAININGJOB_SHORT_NAME = "tj"

SCHEDULER_NAME = "stretto-scheduler"
GPU_RESOURCE = "nvidia.com/gpu"
# A fraction of one GPU. Pods that share a GPU limit this to 1 instead of nvidia.com/gpu; kube-scheduler
# ignores it (ignoredByScheduler) and the extender places it on a concrete device, within that device's
# memory and utilisation budget, from the share annotations below.
GPU_SHARE_RESOURCE = f"{GROUP}/gpu-share"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"  # MiB per device, as NVIDIA's GPU feature discovery writes it

_PREFIX = f"{GROUP}/"

# Labels (selectable).
LABEL_JOB = _PREFIX + "job"                      # TrainingJob name
LABEL_ROLE = _PREFIX + "role"                    # "worker"
LABEL_WORKER_INDEX = _PREFIX + "worker-index"    # 0, 1, ... ; worker 0 hosts the rendezvous
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "stretto"
ROLE_WORKER = "worker"

# Annotations (information).
ANNOTATION_PLANNED_NODE = _PREFIX + "planned-node"        # the round's placement; extender honours it
ANNOTATION_GPU_IDS = _PREFIX + "gpu-ids"                  # "0,1": device indices chosen at bind time
ANNOTATION_GPU_MEMORY = _PREFIX + "gpu-memory"            # bytes of the GPU memory cap (shared GPUs)
ANNOTATION_GPU_MIN_UTIL = _PREFIX + "gpu-min-utilization"  # percent guaranteed on a shared GPU
ANNOTATION_GPU_MAX_UTIL = _PREFIX + "gpu-max-utilization"  # percent ceiling on a shared GPU
ANNOTATION_ROUND = _PREFIX + "round"                      # round number that last shaped the pod
ANNOTATION_CHECKPOINT_REQUESTED = _PREFIX + "checkpoint-requested"

WORKER_CONTAINER_PORT = 29400  # torchrun's c10d rendezvous default


def worker_pod_name(job_name: str, index: int) -> str:
    return f"{job_name}-worker-{index}"


def headless_service_name(job_name: str) -> str:
    return f"{job_name}-workers"


def format_gpu_ids(ids: list[int]) -> str:
    return ",".join(str(i) for i in sorted(ids))


def parse_gpu_ids(value: str | None) -> list[int]:
    """Parse `stretto.io/gpu-ids`; raises ValueError on anything but comma-separated indices."""
    if value is None or value.strip() == "":
        return []
    ids = [int(part) for part in value.split(",")]
    if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(f"invalid {ANNOTATION_GPU_IDS} value {value!r}")
    return sorted(ids)


# ---- Node daemon, shim and pod builder: where a shared-GPU worker finds its control files ------
# The node daemon writes <HOST_CONTROL_ROOT>/<pod uid>/<container>/{config/control, state/ledger};
# the pod builder mounts them (config read-only) and preloads the shim; the shim reads the env below.

SHIM_LIBRARY_NAME = "libstretto-cuda.so"
HOST_CONTROL_ROOT = "/var/run/stretto/containers"  # the daemon's --control-dir default
HOST_SHIM_DIR = "/var/lib/stretto/lib"  # where the node daemon's image installs the shim on the host
CONTAINER_SHIM_DIR = "/usr/local/lib/stretto"  # where workers see it
CONTAINER_CONFIG_DIR = "/var/run/stretto/config"  # read-only: the control file
CONTAINER_STATE_DIR = "/var/run/stretto/state"  # read-write: the ledger
CONFIG_SUBDIR = "config"
STATE_SUBDIR = "state"
CONTROL_FILE_NAME = "control"
LEDGER_FILE_NAME = "ledger"

ENV_LD_PRELOAD = "LD_PRELOAD"
ENV_CONTROL_FILE = "STRETTO_CONTROL_FILE"  # path of the control file inside the container
ENV_LEDGER_FILE = "STRETTO_LEDGER_FILE"  # path of the ledger inside the container
ENV_POD_UID = "STRETTO_POD_UID"  # downward API; used by the mounts' subPathExpr
ENV_MEMORY_LIMIT = "STRETTO_GPU_MEMORY_LIMIT"  # standalone mode: e.g. "4Gi"
ENV_UTILIZATION_LIMIT = "STRETTO_GPU_UTILIZATION_LIMIT"  # standalone mode: percent
ENV_FAILSAFE = "STRETTO_FAILSAFE"  # "open": run uncapped when no limits are found (default: refuse)
ENV_CONTROL_WAIT_MS = "STRETTO_CONTROL_WAIT_MS"  # how long cuInit waits for the daemon's first file

VOLUME_CONFIG = "stretto-gpu-config"
VOLUME_STATE = "stretto-gpu-state"
VOLUME_SHIM = "stretto-gpu-shim"
