"""What a local run exposes: started as launchers start it (``connect()``, in a subprocess with
an actor up), every listening socket of its processes must be on loopback, and a client
without the run's token must be refused. Read from /proc (Linux), not from Ray's own view."""

import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

from mtrl.runtime import local_ray

DRIVER = textwrap.dedent(
    """
    import sys
    import ray
    from mtrl.runtime.launch import connect

    connect(1)

    @ray.remote(num_cpus=0)
    class Echo:
        def ping(self) -> int:
            return 1

    echo = Echo.remote()
    ray.get(echo.ping.remote())  # an actor process, with its own gRPC server, is up
    print(ray._private.worker._global_node.get_session_dir_path(), flush=True)
    sys.stdin.read()  # until the test closes stdin
    """
)


@dataclass
class LocalRun:
    driver: subprocess.Popen
    session_dir: Path
    token: str

    def processes(self) -> set[int]:
        session = local_ray.session_processes(self.session_dir)
        return {self.driver.pid, *local_ray.descendants(self.driver.pid), *session}


def name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
    except OSError:
        return "?"


@pytest.fixture(scope="module")
def local_run(mtrl_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    token = secrets.token_hex(32)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    env["RAY_AUTH_TOKEN"] = token  # the run's token (Ray's default mode: token auth on)
    errors = tmp_path_factory.mktemp("exposure") / "driver.err"
    with errors.open("wb") as err:
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
    line = ""
    try:
        line = driver.stdout.readline().decode().strip() if driver.stdout else ""
        assert line, f"the driver exited with {driver.wait()}:\n{errors.read_text()[-3000:]}"
        yield LocalRun(driver, Path(line), token)
    finally:
        if driver.stdin:
            driver.stdin.close()  # the driver shuts Ray down and exits
        try:
            driver.wait(timeout=60)
        except subprocess.TimeoutExpired:
            driver.kill()
            driver.wait()
        if line:
            local_ray.end_session(Path(line))  # what this test started, nothing else


def test_every_socket_of_a_local_run_is_on_loopback(local_run: LocalRun) -> None:
    sockets = local_ray.listening_sockets(local_run.processes())
    listeners = {pid for pid, _, _ in sockets}
    # GCS, raylet and the actor's gRPC server at least: the scan itself sees them.
    assert len(listeners) >= 3, f"too few listening processes found: {sockets}"
    exposed = [
        f"{name(pid)} on {host}:{port}"
        for pid, host, port in sockets
        if not local_ray.is_loopback(host)
    ]
    assert not exposed, "listening beyond loopback:\n" + "\n".join(exposed)


def gcs_port(run: LocalRun) -> int:
    for pid, _, port in local_ray.listening_sockets(run.processes()):
        if Path(f"/proc/{pid}/comm").read_text().strip() == "gcs_server":
            return port
    raise AssertionError("no gcs_server listening")


def test_a_client_without_the_token_is_refused(local_run: LocalRun) -> None:
    """A raw gRPC call to the GCS: refused without the token or with a wrong one; the same
    call with the run's token passes (so the refusals are about the token, not the call)."""
    request = gcs_service_pb2.GetClusterIdRequest()
    with grpc.insecure_channel(f"127.0.0.1:{gcs_port(local_run)}") as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        for metadata in ([], [("authorization", "Bearer " + "0" * 64)]):
            with pytest.raises(grpc.RpcError) as error:
                stub.GetClusterId(request, metadata=metadata, timeout=30)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
        token = [("authorization", "Bearer " + local_run.token)]
        assert stub.GetClusterId(request, metadata=token, timeout=30).cluster_id
