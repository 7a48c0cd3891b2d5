"""Progress reports through the real SDK and the operator's progress server, on the local control plane."""

from __future__ import annotations

import base64
import math

import pytest

from stretto.sdk.environment import PROGRESS_TOKEN_KEY, progress_secret_name
from stretto.sdk.reporter import ProgressRejected, Reporter
from tests.integration.harness import Harness, wait_for
from tests.integration.test_walking_skeleton import create_job, get_job, running_workers, training_job, worker_pods

SAMPLES_PER_EPOCH = 50000  # training_job's work: 10 epochs of 50,000 samples


def job_token(core, namespace: str, job: str) -> str:
    secret = wait_for(lambda: core.read_namespaced_secret(progress_secret_name(job), namespace), 30,
                      f"the progress Secret of {job}")
    return base64.b64decode(secret.data[PROGRESS_TOKEN_KEY]).decode()


def adaptive_job(name: str) -> dict:
    return training_job(name, adaptation={"mode": "gns", "batchSizes": [32, 64, 128], "initialBatchSize": 32},
                        profile={"model": "resnet18"})


def prediction_of(custom, namespace: str, name: str) -> dict:
    return (get_job(custom, namespace, name).get("status") or {}).get("prediction") or {}


def test_progress_reports_move_the_regime_posterior_and_the_predicted_finish_time(
        harness: Harness, core, custom, namespace):
    create_job(custom, namespace, adaptive_job("learner"))
    wait_for(lambda: running_workers(core, namespace, "learner", 1), 120, "the learner's worker")
    before = wait_for(lambda: (p := prediction_of(custom, namespace, "learner")).get("regimes") and p, 60,
                      "a first prediction with regimes")
    prior = {r["batchSize"]: r["remainingEpochs"] for r in before["regimes"]}
    assert set(prior) == {32, 64, 128}
    assert math.isclose(sum(prior.values()), 10, rel_tol=0.01)  # nothing done yet: all 10 epochs ahead

    reporter = Reporter(url=harness.progress_url, token=job_token(core, namespace, "learner"),
                        namespace=namespace, job="learner")
    reporter.report(epoch=0, samples_done=0, samples_per_second=500, batch_size=32, force=True)
    state = reporter.report(epoch=4, samples_done=4 * SAMPLES_PER_EPOCH, samples_per_second=800, batch_size=32,
                            force=True)
    assert state.allocation is not None and state.allocation.gpus == 1

    def moved() -> dict | None:
        now = prediction_of(custom, namespace, "learner")
        regimes = {r["batchSize"]: r["remainingEpochs"] for r in now.get("regimes") or []}
        return now if regimes and math.isclose(sum(regimes.values()), 6, abs_tol=0.6) else None

    after = wait_for(moved, 60, "the posterior to account for 4 completed epochs at batch size 32")
    posterior = {r["batchSize"]: r["remainingEpochs"] for r in after["regimes"]}
    # Four epochs seen at 32 raise the posterior's *total* at 32 (Dirichlet α_32 + 4), but those epochs are
    # already spent, so a smaller share of what remains is expected at 32 than the prior said (Shockwave's
    # restating of completed epochs): the remaining epochs move towards the larger batch sizes.
    assert posterior[32] / sum(posterior.values()) < prior[32] / sum(prior.values())
    assert posterior[128] / sum(posterior.values()) > prior[128] / sum(prior.values())
    assert after["remainingSeconds"] < before["remainingSeconds"]
    status = get_job(custom, namespace, "learner")["status"]
    assert status["progress"]["samplesDone"] == 4 * SAMPLES_PER_EPOCH
    assert status["progress"]["batchSizeHistory"] == [[0, 32]]


def test_a_forged_report_for_another_job_is_refused(harness: Harness, core, custom, namespace):
    create_job(custom, namespace, adaptive_job("honest"))
    create_job(custom, namespace, adaptive_job("victim"))
    for name in ("honest", "victim"):
        wait_for(lambda n=name: running_workers(core, namespace, n, 1), 120, f"the worker of {name}")
    honest_token = job_token(core, namespace, "honest")

    forger = Reporter(url=harness.progress_url, token=honest_token, namespace=namespace, job="victim")
    with pytest.raises(ProgressRejected) as refused:
        forger.report(epoch=9, samples_done=9 * SAMPLES_PER_EPOCH, samples_per_second=10, batch_size=128, force=True)
    assert refused.value.status == 403
    progress = (get_job(custom, namespace, "victim").get("status") or {}).get("progress") or {}
    assert progress.get("samplesDone", 0) == 0


def test_an_acknowledged_report_survives_an_operator_killed_at_once(harness: Harness, core, custom, namespace):
    """The worker is told its report is taken only once it is in the job's status: kill the operator the
    moment the answer arrives, and the report is there, and the restarted operator goes on from it."""
    create_job(custom, namespace, adaptive_job("durable"))
    wait_for(lambda: running_workers(core, namespace, "durable", 1), 120, "the worker of durable")
    reporter = Reporter(url=harness.progress_url, token=job_token(core, namespace, "durable"),
                        namespace=namespace, job="durable")
    state = reporter.report(epoch=3, samples_done=3 * SAMPLES_PER_EPOCH, samples_per_second=800, batch_size=64,
                            force=True)
    harness.kill("operator")
    assert state.sent
    progress = get_job(custom, namespace, "durable")["status"]["progress"]
    assert progress["samplesDone"] == 3 * SAMPLES_PER_EPOCH and progress["batchSize"] == 64
    harness.start_operator()
    wait_for(lambda: reporter.report(epoch=5, samples_done=5 * SAMPLES_PER_EPOCH, samples_per_second=800,
                                     batch_size=64, force=True).sent, 60, "the restarted operator to take reports")
    progress = get_job(custom, namespace, "durable")["status"]["progress"]
    assert progress["samplesDone"] == 5 * SAMPLES_PER_EPOCH and progress["batchSizeHistory"] == [[0, 64]]


def test_workers_that_exited_0_end_the_job_even_without_its_last_report(harness: Harness, core, custom, namespace):
    create_job(custom, namespace, adaptive_job("quiet"))
    [pod] = wait_for(lambda: running_workers(core, namespace, "quiet", 1), 120, "the worker of quiet")
    now = "2026-12-03T00:00:00Z"
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": {
        "phase": "Succeeded", "containerStatuses": [{
            "name": pod.spec.containers[0].name, "image": pod.spec.containers[0].image, "imageID": "",
            "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}}]}})
    status = wait_for(lambda: (s := get_job(custom, namespace, "quiet").get("status") or {}).get("phase")
                      == "Succeeded" and s, 60, "the job to end Succeeded")
    assert status["message"] == "all 1 workers exited 0 (last report: 0 epochs)"


def test_a_job_applied_again_under_its_name_starts_from_zero_and_runs(harness: Harness, core, custom, namespace):
    create_job(custom, namespace, adaptive_job("again"))
    wait_for(lambda: running_workers(core, namespace, "again", 1), 120, "the first job's worker")
    reporter = Reporter(url=harness.progress_url, token=job_token(core, namespace, "again"),
                        namespace=namespace, job="again")
    assert reporter.report(epoch=10, samples_done=10 * SAMPLES_PER_EPOCH, samples_per_second=800, batch_size=32,
                           force=True).sent
    wait_for(lambda: (get_job(custom, namespace, "again").get("status") or {}).get("phase") == "Succeeded", 60,
             "the first job to finish")
    custom.delete_namespaced_custom_object("stretto.io", "v1alpha1", namespace, "trainingjobs", "again")
    wait_for(lambda: not worker_pods(core, namespace, "again") and not [
        j for j in custom.list_namespaced_custom_object("stretto.io", "v1alpha1", namespace, "trainingjobs")["items"]],
        60, "the first job and its workers to be gone")

    create_job(custom, namespace, adaptive_job("again"))
    wait_for(lambda: running_workers(core, namespace, "again", 1), 120, "the second job's worker")
    status = get_job(custom, namespace, "again").get("status") or {}
    assert status.get("phase") in ("Pending", "Running") and (status.get("progress") or {}).get("samplesDone", 0) == 0


def test_a_report_read_from_a_stale_cache_never_overwrites_further_progress(harness: Harness, custom, namespace,
                                                                            monkeypatch):
    """The channel reads the job from the watch-fed cache; when another replica stored a further report
    since, the preconditioned write conflicts, the report is stored again over a fresh read, and the
    further progress stays."""
    from stretto import contracts
    from stretto.operator import kube
    from stretto.operator.cluster_cache import ClusterCache, Kind
    from stretto.operator.progress_channel import ProgressChannel
    from stretto.operator.progress_reports import ProgressReport

    monkeypatch.setenv("KUBECONFIG", str(harness.kubeconfig))
    kube.api_client.cache_clear()
    try:
        create_job(custom, namespace, adaptive_job("raced"))
        stale = get_job(custom, namespace, "raced")
        args = (contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL, "raced")
        further = {"samplesDone": 200_000.0, "epoch": 4.0, "batchSize": 32, "percent": 40.0}
        custom.patch_namespaced_custom_object_status(*args, {"status": {"progress": further}})  # "another replica"
        cache = ClusterCache()
        cache.store(Kind.JOB, stale)
        channel = ProgressChannel(key=b"k" * 32, url="http://unused", cache=cache)
        report = ProgressReport(namespace=namespace, job="raced", worker=0, epoch=1.0, samples_done=50_000.0,
                                samples_per_second=1000.0, batch_size=32, timestamp=1.7e9)
        assert channel._ingest(report) is not None
        stored = get_job(custom, namespace, "raced")["status"]["progress"]
        assert stored["samplesDone"] == 200_000.0, stored
        held = cache.job(f"{namespace}/raced")  # the write's answer went into the cache (the operator may
        assert int(held["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])  # write later)
        assert held["status"]["progress"]["samplesDone"] == 200_000.0
    finally:
        kube.api_client.cache_clear()
