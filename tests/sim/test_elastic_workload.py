"""The seeded elastic workload generator: same seed same jobs, and the mix it promises."""

from __future__ import annotations

import pytest

from stretto.sim.combined_workload import load_combined_book
from stretto.sim.elastic_workload import ElasticWorkloadArgs, generate_elastic
from stretto.sim.workloads import WorkloadError


@pytest.fixture(scope="module")
def book():
    return load_combined_book()


def test_the_generator_is_seeded(book):
    args = ElasticWorkloadArgs(jobs=30)
    assert generate_elastic(args, profiles=book, seed=4) == generate_elastic(args, profiles=book, seed=4)
    assert generate_elastic(args, profiles=book, seed=4) != generate_elastic(args, profiles=book, seed=5)


def test_the_mix_has_elastic_ranges_wide_workers_adaptation_and_weighted_tenants(book):
    args = ElasticWorkloadArgs(jobs=200, max_gpus=16)
    jobs = generate_elastic(args, profiles=book, seed=1)
    assert all(1 <= j.workers.min <= j.workers.max and j.workers.max * j.gpus_per_worker <= 16 for j in jobs)
    assert any(j.workers.min < j.workers.max for j in jobs) and any(j.workers.min == j.workers.max for j in jobs)
    assert {j.gpus_per_worker for j in jobs} == {1, 2, 4, 8}
    assert {j.adaptation.mode for j in jobs} == {"none", "gns", "accordion"}
    assert {j.tenant for j in jobs} == {"tenant-0", "tenant-1", "tenant-2"}
    assert {(j.tenant, j.weight) for j in jobs} == {("tenant-0", 1.0), ("tenant-1", 1.0), ("tenant-2", 2.0)}
    assert any(book.get(j.model).sensitivity is not None for j in jobs)
    arrivals = [j.arrival_s for j in jobs]
    assert arrivals == sorted(arrivals) and len({j.id for j in jobs}) == len(jobs)


def test_bad_weights_are_refused(book):
    with pytest.raises(WorkloadError, match="tenant_weights"):
        generate_elastic(ElasticWorkloadArgs(tenant_weights=(1.0, 0.0)), profiles=book, seed=0)
