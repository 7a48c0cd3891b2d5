"""Stretto's worker SDK: report training progress and read the allocation, in two lines.

    reporter = stretto.sdk.Reporter.from_env()
    state = reporter.report(epoch=epoch, samples_per_second=rate, batch_size=batch, samples_done=n)

`state.allocation` is what the job holds now (workers, GPUs, CPU and memory per worker) and
`state.checkpoint_requested` says the operator is about to resize the job: save a checkpoint.
Standard library only, so any training image can use it. Network trouble never raises into the
training loop (the last known state comes back); a refused report (bad token, invalid fields) does.
`reporter.finish(...)` sends the last report and retries it until the operator has stored it.
"""

from stretto.sdk.reporter import (
    Accepted,
    Allocation,
    ProgressNotStored,
    ProgressRejected,
    ProgressState,
    Reporter,
)

__all__ = ["Accepted", "Allocation", "ProgressNotStored", "ProgressRejected", "ProgressState", "Reporter"]
