"""Kubernetes OpenAPI v3 → the structural schema a CRD embeds (on a small document shaped like core/v1's)."""

from __future__ import annotations

from typing import Any

import pytest

from stretto.api import pod_template_schema as pts


def _ref(name: str, **extra: Any) -> dict[str, Any]:
    return {"allOf": [{"$ref": f"#/components/schemas/{name}"}], **extra}


SCHEMAS: dict[str, Any] = {
    pts.ROOT: {"type": "object", "properties": {
        "metadata": _ref(pts._OBJECT_META, default={}),
        "spec": _ref("io.k8s.api.core.v1.PodSpec", default={}, description="Spec of the pod. More words."),
    }},
    pts._OBJECT_META: {"type": "object", "properties": {"name": {"type": "string"}}},
    "io.k8s.api.core.v1.PodSpec": {"type": "object", "required": ["containers"], "properties": {
        "containers": {"type": "array", "items": _ref("io.k8s.api.core.v1.Container", default={}),
                       "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                       "x-kubernetes-patch-strategy": "merge"},
        "ephemeralContainers": {"type": "array", "items": {"type": "object"}},
        "restartPolicy": {"type": "string", "default": "Always"},
    }},
    "io.k8s.api.core.v1.Container": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"},
        "ports": {"type": "array", "items": _ref("io.k8s.api.core.v1.ContainerPort"),
                  "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["containerPort", "protocol"]},
        "resources": {"type": "object", "properties": {"limits": {
            "type": "object", "additionalProperties": {"$ref": f"#/components/schemas/{pts._QUANTITY}"}}}},
        "port": {"$ref": f"#/components/schemas/{pts._INT_OR_STRING}"},
        "weird": {"type": "string", "format": "quantity-ish"},
    }},
    "io.k8s.api.core.v1.ContainerPort": {"type": "object", "required": ["containerPort"], "properties": {
        "containerPort": {"type": "integer", "format": "int32", "default": 0},
        "protocol": {"type": "string", "default": "TCP"},
    }},
    pts._QUANTITY: {"type": "string"},
    pts._INT_OR_STRING: {"type": "string", "format": "int-or-string"},
}


def test_refs_are_inlined_and_kubernetes_only_extensions_dropped():
    schema = pts.pod_template_schema({"components": {"schemas": SCHEMAS}})
    spec = schema["properties"]["spec"]
    assert spec["description"] == "Spec of the pod."
    containers = spec["properties"]["containers"]
    assert containers["x-kubernetes-list-type"] == "map" and "x-kubernetes-patch-strategy" not in containers
    assert "ephemeralContainers" not in spec["properties"]
    assert "default" not in spec["properties"]["restartPolicy"]  # the pod's own defaulting applies later
    container = containers["items"]
    assert container["properties"]["ports"]["items"]["properties"]["protocol"]["default"] == "TCP"
    assert "default" not in container["properties"]["ports"]["items"]["properties"]["containerPort"]
    quantity = container["properties"]["resources"]["properties"]["limits"]["additionalProperties"]
    assert quantity["x-kubernetes-int-or-string"] is True and quantity["pattern"] == pts.QUANTITY_PATTERN
    assert container["properties"]["port"]["x-kubernetes-int-or-string"] is True
    assert "format" not in container["properties"]["weird"]
    assert set(schema["properties"]["metadata"]["properties"]) == {"labels", "annotations"}


def test_a_list_map_key_neither_required_nor_defaulted_is_an_error():
    schemas = {**SCHEMAS, "io.k8s.api.core.v1.ContainerPort": {"type": "object", "properties": {
        "containerPort": {"type": "integer"}, "protocol": {"type": "string"}}}}
    with pytest.raises(ValueError, match="neither required nor defaulted"):
        pts.pod_template_schema({"components": {"schemas": schemas}})


def test_the_checked_in_schema_is_core_v1s():
    schema = pts.load()
    pod_spec = schema["properties"]["spec"]["properties"]
    assert {"containers", "initContainers", "volumes", "affinity", "tolerations", "nodeName"} <= set(pod_spec)
    assert "command" in pod_spec["containers"]["items"]["properties"]
