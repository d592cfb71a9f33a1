import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtrl.cli import main


def test_tasks_lists_atari26_with_reference_scores(capsys: pytest.CaptureFixture) -> None:
    assert main(["tasks", "--suite", "atari26"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "26 tasks in suite atari26"
    pong = next(line for line in lines if line.startswith("atari/Pong "))
    assert "-20.7" in pong and "14.6" in pong


def test_check_envs_runs_a_suite(capsys: pytest.CaptureFixture) -> None:
    assert main(["check-envs", "classic", "--steps", "30"]) == 0
    out = capsys.readouterr().out
    assert "4 of 4 tasks ran clean" in out
    assert "classic/Pendulum" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tasks", "--suite", "nope"], "unknown suite 'nope'; valid: atari26"),
        (["check-envs", "classic/Cartpole"], "unknown task 'classic/Cartpole'"),
        (["check-envs", "classic", "--set", "atari.size"], "bad override 'atari.size'"),
        (["check-envs", "classic", "--set", "atari.sizes=3"], "unknown config key 'atari.sizes'"),
        (["check-envs", "classic", "--steps", "0"], "bad --steps 0"),
    ],
)
def test_user_errors_are_one_line_with_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtrl: error: ") and message in err
    assert err.count("\n") == 1


def test_cli_entry_point_prints_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mtrl.cli", "tasks", "--suite", "atari27"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "unknown suite 'atari27'" in result.stderr


def test_check_envs_reports_a_failing_task_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import mtrl.envs.check as check

    def broken(*args, **kwargs):
        raise OSError("ROM file is unreadable")

    monkeypatch.setattr(check, "make_env", broken)
    assert main(["check-envs", "classic/CartPole", "--steps", "5"]) == 1
    out = capsys.readouterr().out
    assert "FAILED OSError: ROM file is unreadable" in out and "0 of 1 tasks ran clean" in out


def test_tensorboard_listens_on_loopback_only(tmp_path: Path) -> None:
    """``mtrl tensorboard`` as a user starts it; its sockets, read from /proc, are on
    127.0.0.1 only. It runs in its own session so the test can stop it and its child."""
    from mtrl.runtime import local_ray

    command = [sys.executable, "-m", "mtrl.cli", "tensorboard", str(tmp_path), "--port", "0"]
    cli = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        serving = False  # TensorBoard's own server; its data server listens earlier
        sockets: list[tuple[int, str, int]] = []
        while not serving and time.monotonic() < deadline and cli.poll() is None:
            time.sleep(0.2)
            sockets = local_ray.listening_sockets([cli.pid, *local_ray.descendants(cli.pid)])
            serving = any(b"tensorboard.main" in cmdline(pid) for pid, _, _ in sockets)
        assert serving, f"TensorBoard never listened (exit status {cli.poll()})"
        assert all(local_ray.is_loopback(host) for _, host, _ in sockets), sockets
    finally:
        os.killpg(cli.pid, signal.SIGTERM)  # its own session: the CLI and TensorBoard
        cli.wait(timeout=30)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
