"""Fake GPU servers: Node objects that look like real 8-GPU machines, played by kwok."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stretto import contracts

KWOK_ANNOTATION = "kwok.x-k8s.io/node"


@dataclass(frozen=True)
class NodeShape:
    gpus: int = 8
    cpus: int = 96
    memory: str = "768Gi"
    gpu_product: str = "NVIDIA-A100-SXM4-80GB"
    gpu_memory_mib: int = 81920
    max_pods: int = 110


def node_name(index: int) -> str:
    return f"stretto-gpu-{index}"


def node_manifest(name: str, shape: NodeShape) -> dict[str, Any]:
    """A Node with its status set at creation (allowed for Nodes); kwok keeps the capacity we give."""
    resources = {
        "cpu": str(shape.cpus),
        "memory": shape.memory,
        "pods": str(shape.max_pods),
        "ephemeral-storage": "1Ti",
        contracts.GPU_RESOURCE: str(shape.gpus),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                contracts.GPU_PRODUCT_LABEL: shape.gpu_product,
                contracts.GPU_MEMORY_LABEL: str(shape.gpu_memory_mib),
                "nvidia.com/gpu.count": str(shape.gpus),
            },
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "status": {"capacity": dict(resources), "allocatable": dict(resources)},
    }


def node_is_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
