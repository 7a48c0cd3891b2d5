"""`elastic`: minimums first in arrival order, idle GPUs grow jobs towards their maximum."""

from __future__ import annotations

from stretto.core.builders import make_job, make_nodes, make_snapshot
from stretto.core.policies.elastic import ElasticArgs, ElasticPolicy
from stretto.core.rounds import RoundConfig, build_plugins, run_round


def gpus_by_job(jobs, total_gpus: int = 8) -> tuple[dict[str, int], dict[str, str]]:
    snapshot = make_snapshot(jobs, nodes=make_nodes(1, gpus=total_gpus))
    shares = ElasticPolicy(ElasticArgs()).share(snapshot, predictions=None)  # type: ignore[arg-type]
    return {r.job_id: r.gpus for r in shares.requests}, dict(shares.waiting)


def test_a_job_alone_grows_to_its_maximum():
    assert gpus_by_job([make_job("a", gpus=4, min_workers=1)]) == ({"a": 4}, {})


def test_idle_gpus_are_split_by_weight_in_whole_workers():
    jobs = [make_job("a", gpus=8, min_workers=1, arrival_s=0),
            make_job("b", gpus=8, min_workers=1, arrival_s=1, weight=3.0)]
    # minimums 1 + 1; the 6 idle GPUs go to the job with the least extra per weight: b gets 3 of every 4
    assert gpus_by_job(jobs)[0] == {"a": 2, "b": 6}


def test_a_grown_job_shrinks_to_admit_a_waiting_one():
    alone, _ = gpus_by_job([make_job("a", gpus=8, min_workers=2)])
    assert alone == {"a": 8}
    shared, waiting = gpus_by_job([make_job("a", gpus=8, min_workers=2, arrival_s=0),
                                   make_job("b", gpus=6, arrival_s=1)])  # b is rigid at 6
    assert shared == {"a": 2, "b": 6} and waiting == {}


def test_minimums_keep_arrival_order_so_a_large_gang_is_not_overtaken():
    jobs = [make_job("old", gpus=6, arrival_s=0), make_job("gang", gpus=4, arrival_s=1),
            make_job("small", gpus=1, arrival_s=2)]
    granted, waiting = gpus_by_job(jobs)
    assert granted == {"old": 6}
    assert set(waiting) == {"gang", "small"}
    assert "waiting for 4 GPUs" in waiting["gang"]


def test_workers_wider_than_the_idle_gpus_are_skipped_not_split():
    jobs = [make_job("wide", gpus=8, gpus_per_worker=4, min_workers=1, arrival_s=0),
            make_job("narrow", gpus=3, min_workers=1, arrival_s=1)]
    granted, _ = gpus_by_job(jobs)
    assert granted["wide"] % 4 == 0 and granted["wide"] + granted["narrow"] <= 8
    assert granted == {"wide": 4, "narrow": 3}


def test_elastic_runs_through_the_round_with_any_packer():
    jobs = [make_job("a", gpus=8, min_workers=1), make_job("b", gpus=4, min_workers=2, arrival_s=1)]
    snapshot = make_snapshot(jobs, nodes=make_nodes(2, gpus=4))
    for packer in ("proportional", "synergy-tune"):
        config = RoundConfig.model_validate({"policy": {"name": "elastic"}, "packer": {"name": packer}})
        decision = run_round(snapshot, build_plugins(config))
        total = sum(a.gpus for a in decision.allocations.values())
        assert total <= 8
        assert decision.allocations["b"].gpus >= 2


def test_a_job_whose_worker_fits_no_node_waits_without_holding_up_the_queue():
    jobs = [make_job("huge", gpus=16, gpus_per_worker=16, arrival_s=0), make_job("small", gpus=2, arrival_s=1)]
    granted, waiting = gpus_by_job(jobs, total_gpus=8)
    assert granted == {"small": 2}
    assert waiting["huge"] == "a worker needs 16 GPUs and no node has more than 8"
