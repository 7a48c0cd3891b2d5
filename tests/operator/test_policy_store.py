"""The stored policy state decides the next round exactly as the state held in memory would."""

from __future__ import annotations

import os

import pytest

from stretto.core.rounds import RoundConfig, build_plugins, run_round
from stretto.operator.policy_store import MAX_STORED_BYTES, PolicyStore, StoredRounds, decode, encode, stored_bytes
from stretto.operator.snapshot_builder import build_snapshot, current_allocations
from tests.operator.test_snapshot_builder import BOOK, bound_pod, job, ready_node

JOBS = [job("a", max_workers=4, created="2026-01-01T00:00:00Z"),
        job("b", max_workers=2, created="2026-01-01T00:01:00Z"),
        job("c", min_workers=2, max_workers=2, created="2026-01-01T00:02:00Z")]
NODES = [ready_node("n1"), ready_node("n2", gpus=4)]
PODS = [bound_pod("a", 0, "n1", "0"), bound_pod("b", 0, "n1", "1")]


def _round(plugins, index: int, state):
    snapshot = build_snapshot(now_s=1_767_225_800.0 + 60 * index, round_index=index, round_seconds=60, jobs=JOBS,
                              nodes=NODES, pods=PODS, book=BOOK, policy_state=state)
    assert set(current_allocations(PODS)) == {"ns/a", "ns/b"}
    return run_round(snapshot, plugins)


@pytest.mark.parametrize("policy", ["gavel", "themis", "shockwave", "stretto"])
def test_a_stored_and_read_back_state_decides_the_next_round_the_same(policy):
    config = RoundConfig.model_validate({"predictor": {"name": "bayesian-regime"}, "policy": {"name": policy},
                                         "packer": {"name": "proportional"}})
    plugins = build_plugins(config)
    state = _round(plugins, 0, {}).policy_state
    state = _round(plugins, 1, state).policy_state
    assert state, f"{policy} keeps no state to store"
    stored = decode({"metadata": {"name": "stretto-policy-state"},
                     **encode(StoredRounds("cfg", 2, state), leader="replica-a")})
    assert stored is not None and (stored.scheduler, stored.next_round) == ("cfg", 2)
    in_memory, resumed = _round(plugins, 2, state), _round(plugins, 2, stored.state)
    assert {k: a.gpus for k, a in resumed.allocations.items()} == {k: a.gpus for k, a in in_memory.allocations.items()}
    assert encode(StoredRounds("cfg", 3, resumed.policy_state), "r") == encode(
        StoredRounds("cfg", 3, in_memory.policy_state), "r")


def test_an_unreadable_config_map_is_no_state():
    assert decode({"data": {"scheduler": "cfg"}, "binaryData": {"state.json.z": "bm90IHpsaWI="}}) is None


def test_a_state_too_big_for_a_config_map_is_not_written_and_the_round_goes_on(caplog):
    """The check comes before any API call: nothing here reaches an API server."""
    noise = {f"job-{i}": os.urandom(64).hex() for i in range(20_000)}  # incompressible: ~2.6 MB
    stored = StoredRounds("cfg", 1, {"job_ids": list(noise), "noise": noise})
    assert stored_bytes(encode(stored, "r")) > MAX_STORED_BYTES
    assert PolicyStore("stretto-system", "r").save(stored) is False
    assert "over the" in caplog.text and "20000 jobs" in caplog.text
