"""Node-loss scenarios on a simulated multi-node Ray cluster (issue 21).

``ray.cluster_utils.Cluster`` starts several raylets on this machine, all on loopback, each
with its own CPUs and custom resources; the run's actors are placed on them by
``resources.*_custom``, and nodes are removed mid-run, as a cloud would lose a machine.
``tests/runtime/test_rt_cluster.py`` runs each scenario in a process of its own (a cluster
cannot share a process with the test session's local Ray) and checks the JSON it writes:

    python tests/runtime/cluster_run.py collect OUT.json RUN_DIR
    python tests/runtime/cluster_run.py learners OUT.json RUN_DIR
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster
from test_rt_e2e import tiny_config

from mtrl.runtime import Driver, read_checkpoint
from mtrl.runtime.config import Resources
from mtrl.runtime.driver import RunLost
from mtrl.runtime.local_ray import LOOPBACK, loopback_node_address

TASKS = ("classic/CartPole", "classic/Acrobot")


def add_node(cluster: Cluster, cpus: int, **custom: float) -> Any:
    with loopback_node_address():  # every raylet and its servers on 127.0.0.1
        return cluster.add_node(
            num_cpus=cpus, resources=custom, node_ip_address=LOOPBACK, include_dashboard=False
        )


def start_cluster(**head: float) -> Cluster:
    cluster = Cluster()
    add_node(cluster, 1, **head)  # the head: GCS, and this driver's raylet
    return cluster


def connect(cluster: Cluster) -> None:
    with loopback_node_address():
        ray.init(address=cluster.address, logging_level=logging.WARNING)


def node_of(actor: Any) -> str:
    return ray.get(actor.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id()))


def config(run_dir: Path, env_steps: int, **changes: Any) -> Any:
    """launch/tiny.py's config, scaled down as the other runtime tests do, on two cheap tasks."""
    base = tiny_config(run_dir, env_steps)
    replay = replace(base.replay, task_discounts=())  # tiny's is for its text task
    return replace(base, tasks=TASKS, replay=replay, max_restarts=3, **changes)


def collect(out: dict, run_dir: Path) -> None:
    """Node A holds the rollout worker and the replay shard, node C the search server and the
    evaluator; spare node B offers both roles. A is removed, then C, while the run goes on."""
    cluster = start_cluster(learn=1)
    nodes = {"A": add_node(cluster, 1, collect=1), "C": add_node(cluster, 1, serve=1)}
    connect(cluster)
    resources = Resources(
        worker_cpus=0.5, search_cpus=0.5, learner_cpus=1, evaluator_cpus=0,
        worker_custom=(("collect", 0.5),), replay_custom=(("collect", 0.5),),
        search_custom=(("serve", 0.5),), evaluator_custom=(("serve", 0.5),),
        learner_custom=(("learn", 1),),
    )  # fmt: skip
    run = config(run_dir, 420, resources=resources, eval_every=100, eval_episodes=1)
    seen: dict[str, Any] = {}

    def ids() -> dict[str, str]:
        a = driver.actors
        return {"worker": node_of(a.workers[0]), "shard": node_of(a.shards[0]),
                "server": node_of(a.servers[0]), "evaluator": node_of(a.evaluator)}  # fmt: skip

    def chaos(driver: Driver) -> None:
        if "placed" not in seen:
            seen["placed"] = ids()
            seen["node_ids"] = {name: node.node_id for name, node in nodes.items()}
            nodes["B"] = add_node(cluster, 2, collect=1, serve=1)  # room for the lost actors
        elif "A" not in seen and driver.env_steps >= 120:
            seen["checkpoint"] = str(driver.save())
            seen["rows_saved"] = ray.get(driver.actors.shards[0].stats.remote())["rows"]
            seen["worker_pids"] = sorted(driver.worker_pids[0])
            seen["server_pid"] = ray.get(driver.actors.servers[0].stats.remote())["pid"]
            cluster.remove_node(nodes["A"])
            seen["A"] = driver.env_steps
        elif "A" in seen and "C" not in seen and driver.env_steps >= 220:
            cluster.remove_node(nodes["C"])
            seen["C"] = driver.env_steps
            seen["evaluations_before_C"] = len(driver.evaluations)

    driver = Driver(run, hooks=(chaos,))
    try:
        result = driver.run()
        a = driver.actors
        out.update(seen, after=ids(), node_B=nodes["B"].node_id)
        out["shard_after"] = ray.get(a.shards[0].stats.remote())
        out["server_after"] = ray.get(a.servers[0].stats.remote())
        out["env_steps"], out["updates"] = result.env_steps, result.updates
        out["worker_pids_after"] = sorted(result.worker_pids[0])
        out["evaluations"] = [(e["env_steps"], e["returns"]) for e in result.evaluations]
        saved = read_checkpoint(result.checkpoints[-1])["counters"]
        out["final_checkpoint_steps"] = saved["env_steps"]
    finally:
        driver.shutdown()
        ray.shutdown()
        cluster.shutdown()


def learners(out: dict, run_dir: Path) -> None:
    """Two learner ranks spread over nodes L1 and L2 train and checkpoint; rank 1's node is
    then lost mid-run (the run stops with RunLost), and the run resumes once node L3 joined."""
    cluster = start_cluster()
    nodes = {name: add_node(cluster, 1, learn=1) for name in ("L1", "L2")}
    connect(cluster)
    resources = Resources(
        worker_cpus=0.5, search_cpus=0.5, learner_cpus=1, learner_custom=(("learn", 1),)
    )
    run = config(
        run_dir, 150, resources=resources, num_learners=2, learner_placement="STRICT_SPREAD"
    )
    driver = Driver(run)
    try:
        out["rank_nodes"] = [node_of(rank) for rank in driver.actors.learner.ranks]
        out["learner_nodes"] = [node.node_id for node in nodes.values()]
        first = driver.run()
        out["first"] = {"env_steps": first.env_steps, "updates": first.updates}
        out["checkpoint"] = str(first.checkpoints[-1])
    finally:
        driver.shutdown()

    def lose_rank_1(driver: Driver) -> None:
        # Rank 1's node: rank 0 then fails in its collective, while rank 1 is reported dead.
        if driver.env_steps >= out["first"]["env_steps"] + 60 and "lost_at" not in out:
            out["lost_at"] = driver.env_steps
            where = node_of(driver.actors.learner.ranks[1])
            name = next(n for n, node in nodes.items() if node.node_id == where)
            cluster.remove_node(nodes.pop(name))

    driver = Driver(replace(run, env_steps=400), resume=str(run_dir), hooks=(lose_rank_1,))
    try:
        driver.run()
        out["lost"] = "no error"
    except RunLost as error:
        out["lost"] = str(error)
    finally:
        driver.shutdown()
    add_node(cluster, 1, learn=1)  # L3 takes the lost node's place
    driver = Driver(replace(run, env_steps=300), resume=str(run_dir))
    try:
        out["resumed_from"] = driver.env_steps
        final = driver.run()
        out["final"] = {"env_steps": final.env_steps, "updates": final.updates}
    finally:
        driver.shutdown()
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="[mtrl] %(message)s")
    logging.getLogger("mtrl").setLevel(logging.INFO)  # restarts and reloads, as launchers show
    scenario, out_path, run_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out: dict[str, Any] = {}
    try:
        {"collect": collect, "learners": learners}[scenario](out, run_dir)
    finally:  # what was seen, also when the scenario failed part-way
        out_path.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
