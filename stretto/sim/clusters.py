"""Cluster shapes for the simulator: `NxG[,cpus=C][,memory=M]` or a file.

`4x8,cpus=24,memory=500Gi` is four servers of 8 GPUs, 24 CPUs and 500 GiB each. Without
cpus/memory a server gets 3 CPUs and 62.5 GiB per GPU (Synergy's GPU-proportional share).
A file is JSON or YAML, `{"nodes": [{"name": .., "gpus": .., "cpus": .., "memory": ..}, ...]}`
(or `{"servers": N, "gpus": G, "cpus": C, "memory": M}`), or a Synergy cluster `.ini`.
"""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path
from typing import Any

import yaml

from stretto.core.snapshots import NodeState

DEFAULT_CPUS_PER_GPU = 3.0
DEFAULT_MEMORY_GIB_PER_GPU = 62.5
_SHAPE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(Ki|Mi|Gi|Ti|K|M|G|T|GB|GiB|TB|TiB)?\s*$")
_TO_GIB = {
    None: 1.0,
    "Gi": 1.0,
    "GiB": 1.0,
    "G": 1e9 / 2**30,
    "GB": 1e9 / 2**30,
    "Ti": 1024.0,
    "TiB": 1024.0,
    "T": 1e12 / 2**30,
    "TB": 1e12 / 2**30,
    "Mi": 1 / 1024,
    "M": 1e6 / 2**30,
    "Ki": 1 / 2**20,
    "K": 1e3 / 2**30,
}


class ClusterSpecError(ValueError):
    pass


def parse_memory_gib(text: str, *, where: str) -> float:
    """`500Gi`, `1.5Ti`, `500` (GiB)."""
    match = _QUANTITY.match(str(text))
    if not match:
        raise ClusterSpecError(f"{where}: memory {text!r} is not a quantity like 500Gi")
    return float(match.group(1)) * _TO_GIB[match.group(2)]


def uniform_nodes(servers: int, gpus: int, cpus: float | None, memory_gib: float | None) -> tuple[NodeState, ...]:
    if servers < 1 or gpus < 1:
        raise ClusterSpecError("a cluster needs at least one server with at least one GPU")
    cpus = gpus * DEFAULT_CPUS_PER_GPU if cpus is None else cpus
    memory_gib = gpus * DEFAULT_MEMORY_GIB_PER_GPU if memory_gib is None else memory_gib
    if cpus <= 0 or memory_gib <= 0:
        raise ClusterSpecError("cpus and memory must be positive")
    width = len(str(servers - 1))
    return tuple(NodeState(f"node-{i:0{width}d}", gpus, float(cpus), float(memory_gib)) for i in range(servers))


def parse_cluster_spec(spec: str) -> tuple[NodeState, ...]:
    path = Path(spec)
    if not _SHAPE.match(spec.split(",")[0]) and path.exists():
        return read_cluster_file(path)
    head, *options = spec.split(",")
    shape = _SHAPE.match(head)
    if not shape:
        raise ClusterSpecError(
            f"cluster {spec!r}: expected NxG[,cpus=C][,memory=M] (e.g. 4x8,cpus=24,memory=500Gi) or a file"
        )
    cpus: float | None = None
    memory: float | None = None
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip()
        if not sep:
            raise ClusterSpecError(f"cluster {spec!r}: option {option!r} is not key=value")
        if key == "cpus":
            try:
                cpus = float(value)
            except ValueError:
                raise ClusterSpecError(f"cluster {spec!r}: cpus={value!r} is not a number") from None
        elif key == "memory":
            memory = parse_memory_gib(value, where=f"cluster {spec!r}")
        else:
            raise ClusterSpecError(f"cluster {spec!r}: unknown option {key!r} (known: cpus, memory)")
    try:
        return uniform_nodes(int(shape.group(1)), int(shape.group(2)), cpus, memory)
    except ClusterSpecError as err:
        raise ClusterSpecError(f"cluster {spec!r}: {err}") from None


def read_cluster_file(path: Path) -> tuple[NodeState, ...]:
    text = path.read_text()
    if path.suffix == ".ini":
        parser = configparser.ConfigParser()
        parser.read_string(text)
        c = parser["CLUSTER"]
        servers = int(c.get("racks", "1")) * int(c["servers_per_rack"])
        return uniform_nodes(
            servers, int(c["gpus_per_server"]), float(c["cpus_per_server"]), float(c["dram_per_server"])
        )
    data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ClusterSpecError(f"{path}: expected a mapping with 'nodes' or 'servers'")
    if "servers" in data:
        memory = data.get("memory")
        return uniform_nodes(
            int(data["servers"]),
            int(data["gpus"]),
            data.get("cpus"),
            None if memory is None else parse_memory_gib(memory, where=str(path)),
        )
    nodes = []
    for i, node in enumerate(data.get("nodes", [])):
        where = f"{path}: nodes[{i}]"
        try:
            nodes.append(
                NodeState(
                    str(node.get("name", f"node-{i}")),
                    int(node["gpus"]),
                    float(node["cpus"]),
                    parse_memory_gib(node["memory"], where=where),
                )
            )
        except KeyError as err:
            raise ClusterSpecError(f"{where}: missing field {err.args[0]!r}") from None
    if not nodes:
        raise ClusterSpecError(f"{path}: no nodes")
    return tuple(nodes)
