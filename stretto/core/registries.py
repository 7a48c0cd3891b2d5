"""Registries: plugins chosen by name, with args validated by each plugin's pydantic model.

`builtin_predictors()`, `builtin_policies()` and `builtin_packers()` each return a fresh
`Registry` listing every built-in once. Nothing registers itself at import time; a test or an
embedding program builds its own registry when it wants a different set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stretto.core.plugins import Packer, Policy, Predictor

PluginT = TypeVar("PluginT")


class PluginSpec(BaseModel):
    """`{name: ..., args: {...}}` as written in config files and on the command line."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegistryEntry(Generic[PluginT]):
    name: str
    args_model: type[BaseModel]
    factory: Callable[[Any], PluginT]


class Registry(Generic[PluginT]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, RegistryEntry[PluginT]] = {}

    def register(self, name: str, args_model: type[BaseModel], factory: Callable[[Any], PluginT]) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = RegistryEntry(name, args_model, factory)

    def names(self) -> list[str]:
        return list(self._entries)

    def entry(self, name: str) -> RegistryEntry[PluginT]:
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self._entries)}") from None

    def build(self, spec: PluginSpec | str, args: Mapping[str, Any] | None = None) -> PluginT:
        if isinstance(spec, str):
            spec = PluginSpec(name=spec, args=dict(args or {}))
        entry = self.entry(spec.name)
        try:
            validated = entry.args_model.model_validate(spec.args)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(args)'}: {e['msg']}" for e in err.errors())
            raise ValueError(f"invalid args for {self.kind} {spec.name!r}: {problems}") from None
        return entry.factory(validated)


def builtin_predictors() -> Registry[Predictor]:
    from stretto.core.predictors import bayesian_regime, current_batch, planned_schedule

    registry: Registry[Predictor] = Registry("predictor")
    for module in (current_batch, planned_schedule, bayesian_regime):
        registry.register(module.NAME, module.ARGS, module.build)
    return registry


def builtin_policies() -> Registry[Policy]:
    from stretto.core.policies import (
        allox,
        drf,
        elastic,
        fifo,
        gavel,
        las,
        optimus,
        shockwave,
        srtf,
        stretto,
        themis,
    )

    registry: Registry[Policy] = Registry("policy")
    for module in (fifo, srtf, las, drf, themis, gavel, allox, shockwave, elastic, stretto, optimus):
        registry.register(module.NAME, module.ARGS, module.build)
    return registry


def builtin_packers() -> Registry[Packer]:
    from stretto.core.packers import most_free, proportional, synergy_greedy, synergy_opt, synergy_tune

    registry: Registry[Packer] = Registry("packer")
    for module in (proportional, synergy_greedy, synergy_tune, synergy_opt, most_free):
        registry.register(module.NAME, module.ARGS, module.build)
    return registry
