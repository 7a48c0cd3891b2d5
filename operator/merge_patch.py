"""JSON merge patch (RFC 7386), to know what a status patch would change before sending it."""

from __future__ import annotations

from typing import Any


def merged(target: Any, patch: Any) -> Any:
    """`target` after `patch`: objects merge key by key, None removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(result.get(key), value)
    return result


def changes(target: dict[str, Any], patch: dict[str, Any]) -> bool:
    """Whether applying `patch` would change `target`."""
    return merged(target, patch) != target
