"""What the operator writes, and what outlives it, on the local control plane: a steady round writes
nothing (counted by the API server itself), the status that says the workers run charges them, a
finished job's status and events tell the truth, repeated events are aggregated, and a new leader
resumes the policy state the old one left."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import zlib
from collections import Counter
from typing import Any

from kubernetes import client, watch

from stretto import contracts
from stretto.operator import kube
from stretto.operator.events import EventRecorder
from stretto.operator.policy_store import POLICY_STATE_CONFIGMAP, STATE_KEY
from stretto.sdk.reporter import Reporter
from tests.integration.harness import CONFIG_NAMESPACE, TEST_OPERATOR_CONFIG, Harness, wait_for
from tests.integration.test_progress import SAMPLES_PER_EPOCH, job_token
from tests.integration.test_walking_skeleton import create_job, get_job, running_workers, training_job

ROUND_SECONDS = TEST_OPERATOR_CONFIG["roundSeconds"]
WRITES = ("POST", "PUT", "PATCH", "APPLY", "DELETE")
# What the operator writes, as the API server counts it. Not counted: kube-scheduler's Bindings and
# events.k8s.io Events, kwok's pod and node status, Leases, and what a namespace's deletion removes.
OPERATOR_RESOURCES = {("", "pods", ""), ("", "services", ""), ("", "events", ""), ("", "configmaps", ""),
                      ("", "secrets", ""), ("stretto.io", "trainingjobs", ""), ("stretto.io", "trainingjobs", "status")}


def _labels(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.replace('"', "").split(",") if "=" in part)


def api_server_writes(api: client.ApiClient) -> Counter[tuple[str, str, str, str]]:
    """apiserver_request_total of the writes the operator could make, by (group, resource, subresource, verb)."""
    response = api.rest_client.pool_manager.request("GET", f"{api.configuration.host}/metrics")
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for line in response.data.decode().splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, value = line[len("apiserver_request_total{"):].rsplit("} ", 1)
        found = _labels(labels)
        key = (found.get("group", ""), found.get("resource", ""), found.get("subresource", ""))
        if found.get("verb") in WRITES and key in OPERATOR_RESOURCES and (
                found["verb"] != "DELETE" or key[1] == "pods"):
            counts[(*key, found["verb"])] += int(float(value))
    return counts


def job_events(core: client.CoreV1Api, namespace: str, name: str) -> list[client.CoreV1Event]:
    return [e for e in core.list_namespaced_event(namespace).items
            if e.involved_object.kind == contracts.TRAININGJOB_KIND and e.involved_object.name == name]


def _settled(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    status = get_job(custom, namespace, name).get("status") or {}
    running = status.get("phase") == "Running" and status.get("readyWorkers") == 2
    return status if running and status.get("accounting", {}).get("runningGpus") == 2 else None


def test_a_steady_round_writes_nothing(harness: Harness, api, core, custom, namespace):
    create_job(custom, namespace, training_job("steady", min_workers=2))
    wait_for(lambda: running_workers(core, namespace, "steady", 2), 120, "both workers of steady running")
    wait_for(lambda: _settled(custom, namespace, "steady"), 60, "steady's status to say Running with 2 GPUs")
    time.sleep(2 * ROUND_SECONDS + 1)  # the rounds that saw it start are over
    before, status_before = api_server_writes(api), get_job(custom, namespace, "steady")["status"]
    time.sleep(4 * ROUND_SECONDS + 1)  # four rounds with nothing to change
    after, status_after = api_server_writes(api), get_job(custom, namespace, "steady")["status"]
    assert after - before == Counter(), f"writes in steady rounds: {dict(after - before)}"
    assert status_after == status_before
    assert len(job_events(core, namespace, "steady")) == len({(e.reason, e.message)
                                                             for e in job_events(core, namespace, "steady")})


def test_the_write_that_says_the_workers_run_says_since_when(core, custom, namespace):
    """Every stored status that counts the workers ready also charges their GPUs: the service received is
    written by the pass that sees them start, not left for the next round (which would then write every
    started job again)."""
    create_job(custom, namespace, training_job("starts", min_workers=2))
    seen: list[dict[str, Any]] = []
    stream = watch.Watch()
    for event in stream.stream(custom.list_namespaced_custom_object, contracts.GROUP, contracts.VERSION, namespace,
                               contracts.TRAININGJOB_PLURAL, timeout_seconds=120):
        status = event["object"].get("status") or {}
        seen.append(status)
        if status.get("readyWorkers") == 2:
            stream.stop()
    ready = [s for s in seen if s.get("readyWorkers") == 2]
    assert ready, f"the workers of starts never ran: {[s.get('phase') for s in seen]}"
    assert all(s.get("accounting", {}).get("runningGpus") == 2 and s["accounting"].get("firstStart")
               for s in ready), ready[0]


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def test_a_finished_job_plans_nothing_is_not_suspended_and_says_when_it_succeeded(
        harness: Harness, core, custom, namespace):
    created = create_job(custom, namespace, training_job("finisher", min_workers=2))
    wait_for(lambda: running_workers(core, namespace, "finisher", 2), 120, "both workers of finisher running")
    wait_for(lambda: _settled(custom, namespace, "finisher"), 60, "finisher's status to say Running")
    reporter = Reporter(url=harness.progress_url, token=job_token(core, namespace, "finisher"),
                        namespace=namespace, job="finisher")
    created_at = dt.datetime.fromisoformat(created["metadata"]["creationTimestamp"])
    wait_for(lambda: dt.datetime.now(dt.UTC).replace(microsecond=0) > created_at, 5,
             "the second after the job's creation (timestamps are in whole seconds)", interval=0.05)
    reported = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert reporter.report(epoch=10, samples_done=10 * SAMPLES_PER_EPOCH, samples_per_second=800, batch_size=128,
                           force=True).sent
    status = wait_for(lambda: (s := get_job(custom, namespace, "finisher").get("status") or {}).get("phase")
                      == "Succeeded" and s, 60, "finisher to end Succeeded")
    time.sleep(3 * ROUND_SECONDS)  # rounds and worker events after the end change nothing more
    status = get_job(custom, namespace, "finisher")["status"]
    assert status["phase"] == "Succeeded" and status["message"] == "finished 10 epochs"
    assert status["allocation"] == {"gpus": 0, "workers": 0, "nodes": []}  # no planned workers, GPUs, CPU
    assert "prediction" not in status
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Scheduled": "False", "Running": "False", "Scaling": "False", "Suspended": "False", "Succeeded": "True",
        "Failed": "False", "WorkersAccepted": "True"}
    succeeded_at = dt.datetime.fromisoformat(_condition(status, "Succeeded")["lastTransitionTime"])
    assert succeeded_at >= reported > created_at  # when it changed, not when the job was created
    assert dt.datetime.fromisoformat(_condition(status, "Running")["lastTransitionTime"]) >= reported
    wait_for(lambda: not running_workers(core, namespace, "finisher", 2), 60, "the workers to be removed")

    events = job_events(core, namespace, "finisher")
    by_reason = Counter(e.reason for e in events)
    assert by_reason["Succeeded"] == 1 and by_reason["Running"] == 1, by_reason
    assert [e.count for e in events if e.reason == "Succeeded"] == [1]
    assert [e.message for e in events if e.reason == "CreatedWorker"] == [
        "created workers 0, 1; the round gives it 2 workers"]  # one decision, one event


def test_repeated_events_are_one_event_with_a_count_and_a_last_time(harness: Harness, core, custom, namespace,
                                                                    monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(harness.kubeconfig))
    kube.api_client.cache_clear()
    body = create_job(custom, namespace, training_job("repeats", min_workers=100))  # never fits: stays Pending
    try:
        recorder = EventRecorder()
        for _ in range(3):
            recorder.record(body, "Resized", "the round gives it 4 workers")
        recorder.record(body, "Resized", "the round gives it 2 workers")
        EventRecorder().record(body, "Resized", "the round gives it 4 workers")  # a restarted operator counts on
    finally:
        kube.api_client.cache_clear()
    events = {e.message: e for e in job_events(core, namespace, "repeats") if e.reason == "Resized"}
    assert set(events) == {"the round gives it 4 workers", "the round gives it 2 workers"}
    four, two = events["the round gives it 4 workers"], events["the round gives it 2 workers"]
    assert (four.count, two.count) == (4, 1)
    assert four.series.count == 4 and four.last_timestamp >= four.first_timestamp
    assert four.last_timestamp >= two.first_timestamp


def _stored(core: client.CoreV1Api) -> dict[str, Any] | None:
    try:
        found = core.read_namespaced_config_map(POLICY_STATE_CONFIGMAP, CONFIG_NAMESPACE)
    except client.exceptions.ApiException:
        return None
    state = json.loads(zlib.decompress(base64.b64decode((found.binary_data or {})[STATE_KEY])))
    return {**(found.data or {}), "state": state}


def test_a_new_leader_resumes_the_policy_state_the_old_one_stored(harness: Harness, core, custom, namespace):
    gavel = {**TEST_OPERATOR_CONFIG, "scheduler": {**TEST_OPERATOR_CONFIG["scheduler"], "policy": {"name": "gavel"}}}
    # Gavel recomputes its shares whenever the job set changes: jobs of earlier tests still being deleted
    # would change it under the test, so they must be gone first.
    wait_for(lambda: not custom.list_cluster_custom_object("stretto.io", "v1alpha1", "trainingjobs")["items"], 120,
             "earlier tests' TrainingJobs to be gone")
    harness.kill("operator")
    harness.configure_operator(gavel)
    lease = f"rounds-{namespace}"
    replicas = ["operator-a", "operator-b"]
    try:
        for name in ("first", "second"):  # before the replicas: gavel's first shares are for both
            create_job(custom, namespace, training_job(name))
        for name in replicas:
            harness.start(name, ["operator", "--leader-election", lease, "--lease-seconds", "4",
                                 "--progress-host", "127.0.0.1", "--progress-port", str(harness.progress_port),
                                 "--progress-url", harness.progress_url])
        ids = {f"{namespace}/first", f"{namespace}/second"}
        before = wait_for(lambda: (s := _stored(core)) and set(s["state"].get("job_ids", ())) == ids
                          and s["state"].get("total_time", 0) > 2 * ROUND_SECONDS and s, 120,
                          "the leader to store gavel's state for both jobs")
        holder = kube_lease_holder(core, lease)
        [leader] = [n for n in replicas if f"-{harness.records[n].pid}-" in holder]
        assert before["leader"] == holder
        harness.kill(leader)
        after = wait_for(lambda: (s := _stored(core)) and s["leader"] not in (holder, before["leader"]) and s, 60,
                         "the other replica to lead and store the state")
        # Gavel recomputes its shares (and their time) only when the job set changes: a new leader that had
        # lost the state would have recomputed them now. It carries on the old shares, counters and rounds.
        assert after["state"]["last_reset_s"] == before["state"]["last_reset_s"]
        assert after["state"]["allocation"] == before["state"]["allocation"]
        assert after["state"]["total_time"] > before["state"]["total_time"]
        assert int(after["nextRound"]) > int(before["nextRound"])
        [follower] = [n for n in replicas if n != leader]
        assert "resumed the policy state of round" in harness.log(follower)
    finally:
        for name in replicas:
            if name in harness.records:
                harness.kill(name)
        harness.configure_operator(TEST_OPERATOR_CONFIG)
        harness.start_operator()


def kube_lease_holder(core: client.CoreV1Api, lease: str) -> str:
    coordination = client.CoordinationV1Api(core.api_client)
    return str(coordination.read_namespaced_lease(lease, CONFIG_NAMESPACE).spec.holder_identity)
