"""kube-scheduler's extender v1 JSON (k8s.io/kube-scheduler/extender/v1) as pydantic models.

The Go types have no json tags, so the keys are the Go field names. Embedded Kubernetes objects
(the Pod, the Nodes) stay plain dicts: `demand` and `cluster_cache` read the few fields they need.
Strict models: a wrong type is a parse error, answered with an Error result, never a guess.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# Kubernetes' own limits: object and node names are DNS subdomains (253), namespaces DNS labels (63).
# Anything longer cannot exist in the API, so it is refused before it costs a request.
SubdomainName = Annotated[str, Field(min_length=1, max_length=253)]
LabelName = Annotated[str, Field(min_length=1, max_length=63)]
Uid = Annotated[str, Field(min_length=1, max_length=128)]


class _Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class NodeList(_Wire):
    items: list[dict[str, Any]] = Field(default_factory=list)

    def names(self) -> list[str]:
        names: list[str] = []
        for node in self.items:
            name = (node.get("metadata") or {}).get("name")
            if not isinstance(name, str) or not name:
                raise ValueError("a node in Nodes.items has no metadata.name")
            names.append(name)
        return names


class ExtenderArgs(_Wire):
    """Filter request. nodeCacheCapable sends NodeNames; otherwise full Nodes."""

    Pod: dict[str, Any]
    Nodes: NodeList | None = None
    NodeNames: list[SubdomainName] | None = None

    def candidate_names(self) -> list[str]:
        if self.NodeNames is not None:
            return self.NodeNames
        if self.Nodes is not None:
            return self.Nodes.names()
        raise ValueError("the request has neither NodeNames nor Nodes")


class ExtenderFilterResult(_Wire):
    Nodes: NodeList | None = None
    NodeNames: list[str] | None = None
    FailedNodes: dict[str, str] = Field(default_factory=dict)
    FailedAndUnresolvableNodes: dict[str, str] = Field(default_factory=dict)
    Error: str = ""



class ExtenderBindingArgs(_Wire):
    PodName: SubdomainName
    PodNamespace: LabelName
    PodUID: Uid
    Node: SubdomainName


class ExtenderBindingResult(_Wire):
    Error: str = ""
