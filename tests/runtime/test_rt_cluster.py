"""A run on a simulated multi-node cluster that loses nodes (issue 21). Each scenario runs in
a process of its own (``cluster_run.py``, whose docstring describes the cluster); these tests
check what it saw."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("cluster_run.py")
TIMEOUT_S = 420  # a scenario takes about a minute on 2 busy cores


def scenario(name: str, tmp_path: Path, mtrl_cache: Path) -> dict:
    out = tmp_path / f"{name}.json"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["MTRL_CACHE"] = str(mtrl_cache)
    command = [sys.executable, str(SCRIPT), name, str(out), str(tmp_path / "run")]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    ) as process:
        try:
            log, _ = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the cluster's processes too
            log, _ = process.communicate()
            pytest.fail(f"{name} ran past {TIMEOUT_S}s:\n{log.decode()[-4000:]}")
    seen = json.loads(out.read_text()) if out.exists() else {}
    assert process.returncode == 0, f"{name} failed: {seen}\n{log.decode()[-4000:]}"
    return seen


def test_losing_collection_and_search_nodes(tmp_path, mtrl_cache) -> None:
    seen = scenario("collect", tmp_path, mtrl_cache)
    nodes, placed, after = seen["node_ids"], seen["placed"], seen["after"]
    # Placed by custom resources: worker and shard on node A, server and evaluator on C.
    assert placed == {"worker": nodes["A"], "shard": nodes["A"]} | {
        "server": nodes["C"],
        "evaluator": nodes["C"],
    }
    # Both nodes were lost mid-run; every lost actor came back on spare node B ...
    assert seen["A"] < seen["C"] < seen["env_steps"]
    assert set(after.values()) == {seen["node_B"]}
    # ... as a new process that went on working: the worker collected again,
    assert len(set(seen["worker_pids_after"]) - set(seen["worker_pids"])) == 1
    # the shard reloaded what the checkpoint taken before the loss held, then grew,
    for task, rows in seen["rows_saved"].items():
        assert seen["shard_after"]["rows"][task] > rows
    # the search server searched with the learner's weights, not fresh ones,
    server = seen["server_after"]
    assert server["pid"] != seen["server_pid"]
    assert server["searches"] > 0 and server["version"] == seen["updates"]
    # and the evaluator evaluated both tasks after its node was gone.
    late = [returns for steps, returns in seen["evaluations"] if steps > seen["C"]]
    assert late and set(late[-1]) == {"classic/CartPole", "classic/Acrobot"}
    # The run reached its budget and checkpointed it.
    assert seen["env_steps"] >= 420 and seen["final_checkpoint_steps"] == seen["env_steps"]


def test_learner_ranks_spread_then_learner_node_lost_and_resumed(tmp_path, mtrl_cache) -> None:
    seen = scenario("learners", tmp_path, mtrl_cache)
    # STRICT_SPREAD: one rank on each learner node; they trained and checkpointed.
    assert sorted(seen["rank_nodes"]) == sorted(seen["learner_nodes"])
    assert seen["first"]["updates"] > 0 and seen["first"]["env_steps"] >= 150
    # A learner node lost mid-run stops the run with one message saying how to go on.
    lost = seen["lost"]
    assert lost.startswith("learner rank 1 died") and "node has died" in lost
    assert f"the newest checkpoint is {seen['checkpoint']}" in lost and "--resume" in lost
    # --resume continues from that checkpoint once the cluster has room for the ranks again.
    assert seen["resumed_from"] == seen["first"]["env_steps"]
    assert seen["final"]["env_steps"] >= 300 and seen["final"]["updates"] > seen["first"]["updates"]
