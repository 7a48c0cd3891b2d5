"""A job no built-in profile knows learns its throughput from its own reports, on the local control plane:
the posterior lands in status.jobModel, moves to the reported rate, drives the round's prediction and the
plausibility ceiling, and outlives an operator killed with SIGKILL."""

from __future__ import annotations

from typing import Any

from stretto.core.job_model import GENERIC_SAMPLES_PER_SECOND, JobThroughputModel
from stretto.sdk.reporter import Reporter
from tests.integration.harness import Harness, wait_for
from tests.integration.test_progress import SAMPLES_PER_EPOCH, job_token
from tests.integration.test_walking_skeleton import create_job, get_job, running_workers, training_job

RATE = 2600.0  # what the job really makes: five times the generic prior's guess
TOTAL = 10 * SAMPLES_PER_EPOCH


def stored_posterior(status: dict[str, Any]) -> JobThroughputModel:
    stored = status["jobModel"]  # the API keeps no nulls: the prior's optional fields come back as absent
    return JobThroughputModel.from_status({**stored, "prior": {"samplesPerEpoch": None, "sensitivity": None,
                                                               **stored["prior"]}})


def learned_rate(status: dict[str, Any]) -> float:
    """The posterior median where the job ran: its one GPU with its worker's CPU and memory requests."""
    model = stored_posterior(status)
    held = model.reports[-1]
    return model.throughput(held.batch_size, held.gpus, held.cpu_per_gpu, held.memory_gib_per_gpu)


def test_an_unknown_model_learns_its_throughput_and_keeps_it_across_an_operator_kill(
        harness: Harness, core, custom, namespace):
    create_job(custom, namespace, training_job("novel", profile={"model": "my-own-net"}))
    wait_for(lambda: running_workers(core, namespace, "novel", 1), 120, "the worker of novel")
    assert "jobModel" not in (get_job(custom, namespace, "novel").get("status") or {})
    reporter = Reporter(url=harness.progress_url, token=job_token(core, namespace, "novel"),
                        namespace=namespace, job="novel")
    rates = [RATE * f for f in (1.0, 0.97, 1.04, 0.99, 1.02, 0.98)]
    for n, rate in enumerate(rates, start=1):
        state = reporter.report(epoch=n * 0.1, samples_done=n * 5000, samples_per_second=rate, batch_size=128,
                                force=True)
        assert state.accepted is not None and not state.accepted.clipped, state.accepted

    status = get_job(custom, namespace, "novel")["status"]
    learned = learned_rate(status)
    print(f"learned {learned:.0f} samples/s from {len(rates)} reports of ~{RATE:.0f} "
          f"(generic prior: {GENERIC_SAMPLES_PER_SECOND:.0f}); summary {status['jobModelSummary']}")
    assert abs(learned / RATE - 1) < 0.05
    assert stored_posterior(status).observed == len(rates)
    assert status["jobModelSummary"]["name"] == "learned" and status["jobModelSummary"]["reports"] == len(rates)
    assert status["jobModelSummary"]["uncertainty"] < 20  # the prior's interval spans more than a factor of ten

    # The round plans with the learned rate: the predicted time left is the work left at ~RATE, not at the
    # generic 500 samples/s (which would predict five times longer). The band is wide because the round reads
    # the profile at the reference share (3 CPUs per GPU), and the reports, all at the worker's share, cannot
    # tell the level from the CPU elasticity.
    def predicted() -> float | None:
        seconds = ((get_job(custom, namespace, "novel").get("status") or {}).get("prediction") or {}).get(
            "remainingSeconds")
        left = (TOTAL - len(rates) * 5000) / RATE
        return seconds if seconds is not None and 0.7 * left < seconds < 1.4 * left else None
    print(f"predicted {wait_for(predicted, 60, 'a prediction at the learned rate'):.0f} s left")

    # A wild claim is judged by what the job's own reports taught, not by another model's table.
    wild = reporter.report(epoch=0.7, samples_done=35000, samples_per_second=20 * RATE, batch_size=128, force=True)
    assert wild.accepted is not None and wild.accepted.clipped
    assert wild.accepted.samples_per_second < 1.6 * RATE, wild.accepted

    before_kill = get_job(custom, namespace, "novel")["status"]["jobModel"]
    harness.kill("operator")
    assert get_job(custom, namespace, "novel")["status"]["jobModel"] == before_kill
    harness.start_operator()
    wait_for(lambda: reporter.report(epoch=0.8, samples_done=40000, samples_per_second=RATE, batch_size=128,
                                     force=True).sent, 60, "the restarted operator to take reports")
    status = get_job(custom, namespace, "novel")["status"]
    after = stored_posterior(status)
    assert after.observed == len(rates) + 2  # went on from the stored posterior, not from the prior
    assert abs(learned_rate(status) / RATE - 1) < 0.05
    print(f"after the restart: {learned_rate(status):.0f} samples/s from {after.observed} reports")
    print(f"predicted {wait_for(predicted, 60, 'the restarted operator to predict at the learned rate'):.0f} s left")
