"""The live run's measurement of resize pauses: a started job that keeps workers but does not train."""

from __future__ import annotations

from stretto.devcluster.live_run import JobRecord, LiveRun
from stretto.sim.workloads import WorkloadJob


def record() -> JobRecord:
    job = WorkloadJob(id="e", arrival_s=0, model="resnet18", batch_size=32, epochs=1, samples_per_epoch=100,
                      workers={"min": 1, "max": 4})
    return JobRecord(job=job, applied=0.0, running=1.0)


def test_a_scale_up_and_a_checkpoint_hold_are_pauses():
    r = record()
    LiveRun._track_pause(r, ["Running"], False, 2.0)
    LiveRun._track_pause(r, ["Running", "Pending"], False, 3.0)  # a new worker starts
    LiveRun._track_pause(r, ["Running", "Running"], False, 3.5)
    LiveRun._track_pause(r, ["Running", "Running"], True, 5.0)  # asked to checkpoint: holds
    LiveRun._track_pause(r, ["Running"], False, 6.25)  # the surplus worker is gone
    assert r.pauses == [0.5, 1.25]


def test_a_suspension_is_not_a_resize():
    r = record()
    LiveRun._track_pause(r, ["Running"], True, 2.0)
    LiveRun._track_pause(r, [], False, 3.0)  # suspended: no workers
    LiveRun._track_pause(r, ["Pending"], False, 9.0)
    LiveRun._track_pause(r, ["Running"], False, 10.0)  # running again: a restart
    assert r.pauses == []
    LiveRun._track_pause(r, ["Running", "Pending"], False, 11.0)
    LiveRun._track_pause(r, ["Running", "Running"], False, 11.5)
    assert r.pauses == [0.5]
