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
