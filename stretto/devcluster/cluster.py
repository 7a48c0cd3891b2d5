"""The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.

Real binaries (built by `binaries.py`) running as local processes on loopback, with free ports, one
run directory (logs, PKI, configs, kubeconfig, state.json) and a stop that leaves nothing behind.
Stretto's own components (extender, operator, node daemons) can be started into the same run
directory so that `stretto dev-cluster down` stops them too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stretto.devcluster import configs, processes
from stretto.devcluster.binaries import Binaries, build_binaries
from stretto.devcluster.fake_nodes import NodeShape, node_is_ready, node_manifest, node_name
from stretto.devcluster.pki import Pki, create_pki
from stretto.devcluster.processes import ProcessRecord
from stretto.devcluster.rest import ApiError, RestClient

Progress = Callable[[str], None]

# The order processes start in; stop goes in reverse.
_CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
_KCM_CONTROLLERS = (
    "garbage-collector-controller", "namespace-controller", "serviceaccount-controller",
    "serviceaccount-token-controller", "pod-garbage-collector-controller",
    # What a Helm install needs to get pods: the chart's Deployments and DaemonSet.
    "deployment-controller", "replicaset-controller", "daemonset-controller",
)


STRETTO_NAMESPACE = "stretto-system"  # where Stretto keeps its configuration and keys, as the Helm chart does


class ClusterError(RuntimeError):
    pass


def default_run_dir() -> Path:
    if explicit := os.environ.get("STRETTO_DEV_CLUSTER_DIR"):
        return Path(explicit)
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "stretto" / "dev-cluster"


@dataclass
class ClusterState:
    """What `up` leaves in state.json for `status`, `down`, tests and Stretto's components."""

    run_dir: str
    api_port: int
    extender_port: int
    etcd_data_dir: str
    nodes: list[str]
    gpus_per_node: int
    # The operator's progress server, chosen once by `up`: a restarted operator listens where the
    # running workers already report (in a real cluster the operator's Service gives the same).
    progress_port: int = 0
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    with_stretto: bool = True  # False: no CRD, no stretto-system, kube-scheduler without Stretto's profile

    @property
    def kubeconfig(self) -> Path:
        return Path(self.run_dir) / "admin.kubeconfig"

    @property
    def progress_url(self) -> str:
        return f"http://127.0.0.1:{self.progress_port}"

    @property
    def extender_url(self) -> str:
        return f"http://127.0.0.1:{self.extender_port}{configs.EXTENDER_URL_PATH}"

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        data = json.loads(text)
        data["processes"] = {name: ProcessRecord(**{**record, "argv": tuple(record.get("argv") or ())})
                             for name, record in data["processes"].items()}
        return cls(**data)


class DevCluster:
    def __init__(self, run_dir: Path | None = None) -> None:
        self.run_dir = (run_dir or default_run_dir()).resolve()
        self.state_file = self.run_dir / "state.json"
        self.log_dir = self.run_dir / "logs"

    # -- state ---------------------------------------------------------------------------------
    def load_state(self) -> ClusterState | None:
        if not self.state_file.exists():
            return None
        return ClusterState.from_json(self.state_file.read_text())

    def _save(self, state: ClusterState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        tmp.replace(self.state_file)

    def rest(self, state: ClusterState | None = None, timeout: float = 10.0) -> RestClient:
        pki = Pki(self.run_dir / "pki")
        port = (state or self._require_state()).api_port
        return RestClient("127.0.0.1", port, pki.serving_ca, pki.admin_cert, pki.admin_key, timeout)

    def _require_state(self) -> ClusterState:
        state = self.load_state()
        if state is None:
            raise ClusterError(f"no dev cluster in {self.run_dir}: run `stretto dev-cluster up` first")
        return state

    # -- up ------------------------------------------------------------------------------------
    def up(self, nodes: int = 4, gpus_per_node: int = 8, progress: Progress = print,
           shape: NodeShape | None = None, with_stretto: bool = True) -> ClusterState:
        """Start the control plane; `with_stretto=False` leaves a plain cluster, as a platform team's
        is before `helm install`: no TrainingJob CRD, no stretto-system namespace, and kube-scheduler
        serving only the default profile (the chart brings its own kube-scheduler and extender).
        """
        existing = self.load_state()
        if existing is not None and self._control_plane_alive(existing):
            progress(f"dev cluster already running in {self.run_dir}")
            return existing
        if existing is not None:
            self.down(progress=lambda _msg: None)

        binaries = build_binaries(progress)
        started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("pki", "logs"):
            shutil.rmtree(self.run_dir / stale, ignore_errors=True)
        pki = create_pki(self.run_dir / "pki")
        shm = Path("/dev/shm")
        etcd_parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else self.run_dir
        state = ClusterState(
            run_dir=str(self.run_dir),
            api_port=processes.free_port(),
            extender_port=processes.free_port(),
            progress_port=processes.free_port(),
            etcd_data_dir=tempfile.mkdtemp(prefix="stretto-etcd-", dir=etcd_parent),
            nodes=[node_name(i) for i in range(nodes)],
            gpus_per_node=gpus_per_node,
            with_stretto=with_stretto,
        )
        self._save(state)
        try:
            self._start_etcd(state, binaries, progress)
            self._start_apiserver(state, binaries, pki, progress)
            configs.write_yaml(state.kubeconfig, configs.kubeconfig(pki, state.api_port))
            self._start_controller_manager(state, binaries, pki, progress)
            self._start_scheduler(state, binaries, progress)
            self._start_kwok(state, binaries, progress)
            if with_stretto:
                self._install_crds(state, progress)
            self._create_nodes(state, shape or NodeShape(gpus=gpus_per_node), progress)
        except BaseException:
            progress(f"bring-up failed; stopping what was started (logs stay in {self.log_dir})")
            try:
                self.down(progress=lambda _msg: None, keep_logs=True)
            except ClusterError as stop_error:  # report it, but keep the error that made us stop
                progress(f"while stopping: {stop_error}")
            raise
        progress(f"dev cluster up in {time.monotonic() - started:.1f}s: {nodes} nodes x {gpus_per_node} GPUs; "
                 f"kubeconfig {state.kubeconfig}")
        return state

    @staticmethod
    def _control_plane_alive(state: ClusterState) -> bool:
        return all(name in state.processes and state.processes[name].alive() for name in _CONTROL_PLANE)

    def _register(self, state: ClusterState, record: ProcessRecord) -> None:
        state.processes[record.name] = record
        self._save(state)

    def _wait(self, what: str, check: Callable[[], bool], state: ClusterState, timeout: float) -> None:
        """Poll `check`; fail at once, with its log, if any process of the cluster has died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in state.processes.values():
                if not process.alive():
                    raise ClusterError(f"{process.name} exited while waiting for {what}. Last log lines "
                                       f"({process.log}):\n{processes.log_tail(process)}")
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.25)
        newest = list(state.processes.values())[-1:]
        tail = "".join(f"\n{r.log}:\n{processes.log_tail(r)}" for r in newest)
        raise ClusterError(f"{what} not ready after {timeout:.0f}s.{tail}")

    def _start_etcd(self, state: ClusterState, binaries: Binaries, progress: Progress) -> None:
        client, peer = processes.free_port(), processes.free_port()
        record = processes.start("etcd", [
            str(binaries.etcd), "--name=default", f"--data-dir={state.etcd_data_dir}",
            f"--listen-client-urls=http://127.0.0.1:{client}", f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}", "--unsafe-no-fsync",
            "--auto-compaction-retention=1", f"--quota-backend-bytes={2 * 1024**3}", "--log-level=warn",
            "--listen-metrics-urls=",
        ], self.log_dir)
        self._register(state, record)
        (self.run_dir / "etcd.url").write_text(f"http://127.0.0.1:{client}")

        def healthy() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{client}/health", timeout=2) as response:
                return bool(json.loads(response.read()).get("health") == "true")

        self._wait("etcd", healthy, state, 60)
        progress("etcd ready")

    def _start_apiserver(self, state: ClusterState, binaries: Binaries, pki: Pki, progress: Progress) -> None:
        etcd_url = (self.run_dir / "etcd.url").read_text()
        record = processes.start("kube-apiserver", [
            str(binaries.kube_apiserver), f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", f"--secure-port={state.api_port}",
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.client_ca}", "--authorization-mode=Node,RBAC",
            f"--service-account-issuer=https://127.0.0.1:{state.api_port}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true",
            # The ServiceAccount admission plugin races the controller that creates `default` in a new
            # namespace; nothing here mounts tokens, so it is off. OwnerReferencesPermissionEnforcement
            # is on, as on OpenShift: setting blockOwnerDeletion needs update on the owner's finalizers.
            "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            "--v=1",
        ], self.log_dir)
        self._register(state, record)
        rest = self.rest(state, timeout=3)
        self._wait("kube-apiserver", lambda: rest.get("/readyz") == "ok", state, 120)
        progress("kube-apiserver ready")

    def _start_controller_manager(self, state: ClusterState, binaries: Binaries, pki: Pki,
                                  progress: Progress) -> None:
        port = processes.free_port()
        kubeconfig = str(state.kubeconfig)
        record = processes.start("kube-controller-manager", [
            str(binaries.kube_controller_manager), f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={port}", "--leader-elect=false",
            f"--controllers={','.join(_KCM_CONTROLLERS)}",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.serving_ca}", "--use-service-account-credentials=false",
            "--concurrent-gc-syncs=5", "--v=1",
        ], self.log_dir)
        self._register(state, record)
        self._wait("kube-controller-manager", lambda: _https_ok(port, "/healthz"), state, 90)
        progress("kube-controller-manager ready")

    def _start_scheduler(self, state: ClusterState, binaries: Binaries, progress: Progress) -> None:
        port = processes.free_port()
        config = configs.write_yaml(self.run_dir / "scheduler.yaml",
                                    configs.scheduler_configuration(state.kubeconfig, state.extender_port,
                                                                    stretto_profile=state.with_stretto))
        kubeconfig = str(state.kubeconfig)
        record = processes.start("kube-scheduler", [
            str(binaries.kube_scheduler), f"--config={config}", "--bind-address=127.0.0.1",
            f"--secure-port={port}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", "--v=2",
        ], self.log_dir)
        self._register(state, record)
        self._wait("kube-scheduler", lambda: _https_ok(port, "/readyz"), state, 90)
        progress(f"kube-scheduler ready (profile stretto-scheduler -> extender {state.extender_url})"
                 if state.with_stretto else "kube-scheduler ready (default profile only)")

    def _start_kwok(self, state: ClusterState, binaries: Binaries, progress: Progress) -> None:
        config = self.run_dir / "kwok.yaml"
        config.write_text(configs.kwok_configuration(binaries.kwok_stages.read_text()))
        port = processes.free_port()
        record = processes.start("kwok", [
            str(binaries.kwok), f"--kubeconfig={state.kubeconfig}", f"--config={config}",
            f"--server-address=127.0.0.1:{port}",
        ], self.log_dir)
        self._register(state, record)
        self._wait("kwok", lambda: _http_ok(port, "/healthz"), state, 60)
        progress("kwok ready")

    def _install_crds(self, state: ClusterState, progress: Progress) -> None:
        from stretto.api.crd import trainingjob_crd

        rest = self.rest(state)
        crd = trainingjob_crd()
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        try:
            rest.request("POST", path, crd)
        except ApiError as error:
            if error.status != 409:
                raise
            current = rest.get(f"{path}/{crd['metadata']['name']}")
            crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            rest.request("PUT", f"{path}/{crd['metadata']['name']}", crd)

        def established() -> bool:
            current = rest.get(f"{path}/{crd['metadata']['name']}")
            conditions = current.get("status", {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        self._wait("TrainingJob CRD", established, state, 30)
        rest.create("/api/v1/namespaces", {"metadata": {"name": STRETTO_NAMESPACE}})
        progress(f"TrainingJob CRD established; namespace {STRETTO_NAMESPACE} ready for Stretto's own objects")

    def _create_nodes(self, state: ClusterState, shape: NodeShape, progress: Progress) -> None:
        rest = self.rest(state)
        for name in state.nodes:
            rest.create("/api/v1/nodes", node_manifest(name, shape))

        def all_ready() -> bool:
            items = rest.get("/api/v1/nodes")["items"]
            ready = {n["metadata"]["name"] for n in items if node_is_ready(n)}
            return set(state.nodes) <= ready

        self._wait("fake GPU nodes", all_ready, state, 60)
        progress(f"{len(state.nodes)} fake GPU nodes Ready ({shape.gpus} x {shape.gpu_product} each)")

    # -- Stretto components ----------------------------------------------------------------------
    def start_component(self, name: str, args: list[str], env: dict[str, str] | None = None) -> ProcessRecord:
        """Start `stretto <args>` in the background, logged and stopped with the cluster."""
        state = self._require_state()
        if name in state.processes and state.processes[name].alive():
            processes.stop(state.processes[name])
        environment = dict(os.environ)
        environment["KUBECONFIG"] = str(state.kubeconfig)
        environment.update(env or {})
        record = processes.start(name, [sys.executable, "-m", "stretto.cli", *args], self.log_dir, environment)
        self._register(state, record)
        return record

    def restart(self, name: str) -> ProcessRecord:
        """SIGKILL one process of the cluster (control plane or Stretto component) and start it again
        with the same command line, ports and data: a crash and its supervisor's restart."""
        state = self._require_state()
        if name not in state.processes:
            raise ClusterError(f"no process {name!r} in this dev cluster: {', '.join(sorted(state.processes))}")
        record = processes.restart(state.processes[name], self.log_dir)
        self._register(state, record)
        return record

    def stop_component(self, name: str) -> None:
        """Stop a Stretto component (if it runs) and forget it."""
        state = self._require_state()
        record = state.processes.pop(name, None)
        if record is not None and record.alive():
            processes.stop(record)
        self._save(state)

    def forget_component(self, name: str) -> None:
        state = self._require_state()
        state.processes.pop(name, None)
        self._save(state)

    # -- status and down -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        state = self.load_state()
        if state is None:
            return {"running": False, "run_dir": str(self.run_dir)}
        return {
            "running": self._control_plane_alive(state),
            "run_dir": state.run_dir,
            "kubeconfig": str(state.kubeconfig),
            "api_server": f"https://127.0.0.1:{state.api_port}",
            "extender_url": state.extender_url,
            "nodes": state.nodes,
            "processes": {name: {"pid": r.pid, "alive": r.alive(), "log": r.log}
                          for name, r in state.processes.items()},
        }

    def down(self, progress: Progress = print, keep_logs: bool = True) -> None:
        state = self.load_state()
        if state is None:
            progress(f"no dev cluster in {self.run_dir}")
            return
        order = [n for n in state.processes if n not in _CONTROL_PLANE]
        order += [n for n in reversed(_CONTROL_PLANE) if n in state.processes]
        for name in order:
            processes.stop(state.processes[name])
        survivors = [name for name in order if state.processes[name].alive()]
        if survivors:
            raise ClusterError(f"could not stop: {', '.join(survivors)}")
        shutil.rmtree(state.etcd_data_dir, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)
        if not keep_logs:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        progress(f"dev cluster stopped ({len(order)} processes); logs in {self.log_dir}")


def _https_ok(port: int, path: str) -> bool:
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # components' self-signed serving certs; readiness only
    with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", timeout=2, context=context) as response:
        return bool(response.status == 200)


def _http_ok(port: int, path: str) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        return bool(response.status == 200)
