"""GPU sharing end to end: TrainingJob gpuShare → extender → node daemon → control files → shim.

Two workers of a job that asks for a fraction of a GPU land on one device of one fake node; the node
daemon (mock NVML through unmodified pynvml) learns their shares from the pods bound there and
writes each container's control file; a CUDA program run under the shim with that control file
(as the worker container would be) is held to the memory cap. Only the GPU is fake.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stretto import contracts
from stretto.devcluster import processes
from stretto.gpu_interceptor import control_file
from tests.gpu.gpu_support import SHIM, TESTS_BIN, make_fake_gpus, run_json
from tests.integration.harness import Harness, wait_for
from tests.integration.test_walking_skeleton import create_job, running_workers, training_job

MiB = 2**20
NODE = "stretto-gpu-0"
CUDA_ERROR_OUT_OF_MEMORY = 2


def test_a_shared_gpu_job_is_placed_on_one_gpu_and_its_workers_obey_the_daemons_limits(
        harness: Harness, core, custom, namespace, tmp_path: Path):
    assert SHIM.is_file() and (TESTS_BIN / "probe_linked").is_file(), \
        "native build missing: run `make -C gpu_interceptor/native` (make test does)"
    gpus = make_fake_gpus(tmp_path / "gpus", [("NVIDIA A100-SXM4-80GB", "80Gi")] * 8)
    control_root = tmp_path / "control"
    daemon_env = gpus.env(KUBECONFIG=str(harness.kubeconfig))
    daemon = processes.start("node-daemon", [
        sys.executable, "-m", "stretto.cli", "node-daemon", "--node", NODE, "--control-dir", str(control_root),
        "--metrics-port", "0", "--interval", "0.5",
    ], harness.log_dir, daemon_env)
    try:
        body = training_job("shared", min_workers=2,
                            gpuShare={"memory": "10Gi", "minUtilization": 30, "maxUtilization": 60})
        body["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": NODE}
        create_job(custom, namespace, body)
        pods = wait_for(lambda: running_workers(core, namespace, "shared", 2), 120, "both shared workers")

        devices = {pod.metadata.annotations[contracts.ANNOTATION_GPU_IDS] for pod in pods}
        assert len(devices) == 1 and len(contracts.parse_gpu_ids(devices.pop())) == 1, devices
        assert {pod.spec.node_name for pod in pods} == {NODE}
        for pod in pods:
            container = pod.spec.containers[0]
            assert container.resources.limits == {contracts.GPU_SHARE_RESOURCE: "1"}
            env = {e.name: e.value for e in container.env}
            assert env[contracts.ENV_LD_PRELOAD].endswith(contracts.SHIM_LIBRARY_NAME)

        controls = {}
        for pod in pods:
            path = control_file.control_path(control_root, pod.metadata.uid, "trainer")
            wait_for(path.exists, 30, f"the daemon to write {path}")
            controls[pod.metadata.name] = (path, control_file.read_control_file(path))
        for _path, block in controls.values():
            assert block.memory_limit_bytes == 10 * 2**30
            assert (block.util_min_bp, block.util_max_bp) == (3000, 6000)

        path, _block = next(iter(controls.values()))
        ledger = control_file.ledger_path(control_root, pods[0].metadata.uid, "trainer")
        worker_env = gpus.shim_env(**{contracts.ENV_CONTROL_FILE: str(path), contracts.ENV_LEDGER_FILE: str(ledger)})
        (result,) = run_json([str(TESTS_BIN / "probe_linked"), "--chunk-mib", "1024", "--max-mib", "16384"],
                             worker_env)
        assert result["allocated"] == 10 * 1024 * MiB, result  # 10 one-GiB chunks fit, the 11th does not
        assert result["first_error"] == CUDA_ERROR_OUT_OF_MEMORY, result
        assert daemon.alive(), processes.log_tail(daemon)
    finally:
        processes.stop(daemon)
