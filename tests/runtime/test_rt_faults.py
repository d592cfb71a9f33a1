"""Killed actors come back: a rollout worker restarts and collects again, a replay shard
restarts and reloads its tasks from the newest checkpoint; the run reaches its budget."""

import ray
from test_rt_e2e import tiny_config

from mtrl.runtime import Driver, read_checkpoint


def test_killed_worker_and_replay_shard_rejoin(ray_local, tmp_path) -> None:
    seen: dict = {}

    def chaos(driver: Driver) -> None:
        if "worker" not in seen and driver.env_steps >= 60:
            seen["worker"] = set(driver.worker_pids[0])
            ray.kill(driver.actors.workers[0], no_restart=False)
        elif "worker" in seen and "shard" not in seen and driver.env_steps >= 150:
            seen["checkpoint"] = driver.save()
            seen["shard"] = ray.get(driver.actors.shards[0].stats.remote())
            ray.kill(driver.actors.shards[0], no_restart=False)

    driver = Driver(tiny_config(tmp_path / "run", env_steps=240), hooks=(chaos,))
    try:
        result = driver.run()
        shard = ray.get(driver.actors.shards[0].stats.remote())
    finally:
        driver.shutdown()
    assert result.env_steps >= 240
    assert len(result.worker_pids[0] - seen["worker"]) == 1  # a new process collected
    assert shard["pid"] != seen["shard"]["pid"]
    for task, rows in seen["shard"]["rows"].items():  # restored, then collected more
        assert shard["rows"][task] >= rows
    assert read_checkpoint(seen["checkpoint"])["counters"]["env_steps"] >= 150
