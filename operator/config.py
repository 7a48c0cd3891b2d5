"""The operator's one validated configuration: round length, plugins, checkpoint notice, tenant weights, time scale.

It lives in a ConfigMap (default `stretto-system/stretto-config`, key `config.yaml`) that the
operator re-reads every round, so a platform team changes policy or packer without a restart. An
invalid edit is refused with a log line naming the field, and the last good configuration stays.
`STRETTO_ROUND_SECONDS` overrides the round length and `STRETTO_TIME_SCALE` the time scale (the dev
cluster's compressed time, where the training emulator runs `timeScale` training seconds per wall second).
"""

from __future__ import annotations

import logging
import os
from typing import Annotated

import yaml
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stretto.core.rounds import RoundConfig, build_plugins
from stretto.operator import kube

log = logging.getLogger(__name__)
CONFIG_KEY = "config.yaml"


class OperatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    round_seconds: float = Field(60.0, ge=0.5, le=3600, alias="roundSeconds",
                                 description="seconds between scheduling rounds")
    scheduler: RoundConfig = Field(default_factory=RoundConfig)  # the one default round (stretto.core.rounds)
    checkpoint_notice_seconds: float = Field(10.0, ge=0, le=3600, alias="checkpointNoticeSeconds",
                                             description="time a worker is asked to checkpoint before removal")
    @field_validator("scheduler")
    @classmethod
    def _no_shared_gpu_plans(cls, scheduler: RoundConfig) -> RoundConfig:
        if scheduler.packer.args.get("share_gpus"):
            raise ValueError("packer share_gpus is for `stretto simulate` only: the extender books whole GPUs to "
                             "one job, so a live cluster cannot run a plan that pairs two jobs on one GPU")
        return scheduler

    tenant_weights: dict[str, Annotated[float, Field(gt=0, le=1000)]] = Field(
        default_factory=dict, alias="tenantWeights",
        description="share weight per tenant (default 1); a job's weight is its tenant's times its own spec.weight")
    time_scale: float = Field(1.0, gt=0, le=10_000, alias="timeScale",
                              description="training seconds per wall second: 1 on a real cluster, more where training "
                                          "is emulated in compressed time")


def _location() -> tuple[str, str]:
    namespace, _, name = os.environ.get("STRETTO_CONFIG", "stretto-system/stretto-config").partition("/")
    return namespace, name or "stretto-config"


class ConfigSource:
    """Reads the ConfigMap each round; keeps the last good configuration when an edit is invalid."""

    def __init__(self) -> None:
        self.current = self._with_overrides(OperatorConfig())

    @staticmethod
    def _with_overrides(config: OperatorConfig) -> OperatorConfig:
        overrides = {field: float(value) for field, env in (("round_seconds", "STRETTO_ROUND_SECONDS"),
                                                            ("time_scale", "STRETTO_TIME_SCALE"))
                     if (value := os.environ.get(env))}
        return config.model_copy(update=overrides) if overrides else config

    def refresh(self) -> OperatorConfig:
        namespace, name = _location()
        try:
            config_map = kube.core().read_namespaced_config_map(name, namespace)
        except ApiException as error:
            if error.status != 404:
                log.warning("cannot read ConfigMap %s/%s (%s); keeping the current configuration",
                            namespace, name, error.reason)
            return self.current
        text = (config_map.data or {}).get(CONFIG_KEY, "")
        try:
            config = OperatorConfig.model_validate(yaml.safe_load(text) or {})
            build_plugins(config.scheduler)  # the plugins must exist and accept their args
        except (ValidationError, ValueError, yaml.YAMLError) as error:
            log.error("ConfigMap %s/%s key %s is invalid, keeping the last good configuration: %s",
                      namespace, name, CONFIG_KEY, error)
            return self.current
        self.current = self._with_overrides(config)
        return self.current
