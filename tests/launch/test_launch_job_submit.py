"""``ray job submit`` of launch/tiny.py to a local ``ray start --head`` on 127.0.0.1; the
driver is SIGKILLed mid-run and a second submitted job resumes it from the last checkpoint.

Ray 2.60 turns token authentication on by default; on loopback the test turns it off
(``RAY_AUTH_MODE=disabled``). The cluster runs with ``--block`` and is stopped by
terminating that process: ``ray stop`` would also kill any other Ray on the machine (such as
a parallel test worker's).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtrl.runtime.checkpoint import latest_checkpoint, read_checkpoint

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
FAST = [
    "--set", "envs_per_task=1",
    "--set", "acting.search.num_simulations=2",
    "--set", "warmup_env_steps=20",
    "--set", "eval_episodes=0",
    "--set", "log_every_s=2",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@pytest.fixture
def cluster(mtrl_cache, tmp_path, monkeypatch) -> Iterator[tuple[str, dict]]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "MTRL_CACHE": str(mtrl_cache)}
    env.pop("RAY_ADDRESS", None)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    dashboard = free_port()
    command = [
        RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
        f"--port={free_port()}", "--num-cpus=2", "--include-dashboard=true",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
        # Fixed default ports would clash with another Ray on this machine (a parallel
        # test worker's): its job agent would never start.
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
    ]  # fmt: skip
    log = (tmp_path / "ray-start.log").open("w")
    head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        wait_until(lambda: answers(f"{address}/api/version"), 90, "the Ray job API")
        yield address, env
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        log.close()


def submit(address: str, env: dict, args: list[str], *extra: str) -> str:
    command = [
        RAY, "job", "submit", "--address", address, "--working-dir", str(LAUNCH), *extra,
        "--", sys.executable, "tiny.py", *args,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    return done.stdout + done.stderr


def accepted(address: str, env: dict, args: list[str], *extra: str) -> str:
    """Right after start the head may still lack a job agent: submit again until accepted."""
    for _ in range(30):
        output = submit(address, env, args, *extra)
        if "submitted successfully" in output:
            return output
        time.sleep(3)
    raise AssertionError(f"job not accepted: {output[-3000:]}")


def test_job_submit_sigkill_and_resume(cluster, tmp_path) -> None:
    from ray.job_submission import JobSubmissionClient

    address, env = cluster
    run_dir = tmp_path / "run"
    first = [*FAST, "--set", "env_steps=100000", "--set", f"run_dir={run_dir}"]
    first += ["--set", "checkpoint_minutes=0.02"]
    accepted(address, env, first, "--no-wait", "--submission-id", "mtrl-first")
    client = JobSubmissionClient(address)

    def checkpointed() -> bool:
        if client.get_job_status("mtrl-first").is_terminal():
            raise AssertionError(client.get_job_logs("mtrl-first")[-3000:])
        found = latest_checkpoint(run_dir)
        return found is not None and "000000000000" not in found.name

    try:
        wait_until(checkpointed, 150, "a checkpoint")
    except TimeoutError:
        raise AssertionError(client.get_job_logs("mtrl-first")[-3000:]) from None
    pid = client.get_job_info("mtrl-first").driver_info.pid
    os.kill(int(pid), signal.SIGKILL)  # no checkpoint on the way out
    wait_until(lambda: client.get_job_status("mtrl-first").is_terminal(), 60, "the job's end")
    last = read_checkpoint(latest_checkpoint(run_dir))
    steps = last["counters"]["env_steps"]

    target = steps + 40
    output = submit(address, env, ["--resume", str(run_dir), "--set", f"env_steps={target}"])
    assert "succeeded" in output, output[-3000:]
    assert f"resumed at {steps} env steps" in output
    final = read_checkpoint(latest_checkpoint(run_dir))
    assert final["counters"]["env_steps"] >= target
    assert final["counters"]["updates"] >= last["counters"]["updates"]
    for task, snapshot in last["replay"].items():  # the replay carried on from the snapshot
        assert final["replay"][task]["rows"] >= snapshot["rows"]
