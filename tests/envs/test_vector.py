"""The heterogeneous batch: masks for mixed tasks, auto-reset, crash recovery."""

from dataclasses import replace

import numpy as np
import pytest

from mtrl.envs.base import Action, Step, TaskEnv, check_index_action
from mtrl.envs.batch import TaskSet
from mtrl.envs.make import make_env
from mtrl.envs.registry import get_task
from mtrl.envs.settings import EnvSettings
from mtrl.envs.spec import ActionSpace, Modality, TaskSpec
from mtrl.envs.vector import ActionBatch, MultiTaskEnv

TEXT_SPEC = TaskSpec("text/fake", Modality.TEXT, (), ActionSpace("text", n=20), 5)


class FakeTextEnv(TaskEnv):
    """Offers 4 commands; the episode terminates after 3 steps with reward = chosen index."""

    def __init__(self, spec: TaskSpec, crash_at: int = -1) -> None:
        self.spec, self.crash_at, self.t = spec, crash_at, 0
        self.legal = np.zeros(spec.action.n, dtype=bool)
        self.legal[:4] = True

    def _step(self, reward: float, done: bool) -> Step:
        commands = ("north", "south", "take coin", "look")
        return Step(f"room {self.t}", reward, done, False, self.legal, commands)

    def reset(self, seed: int | None = None) -> Step:
        self.t = 0
        return self._step(0.0, False)

    def step(self, action: Action) -> Step:
        index = check_index_action(self.spec, action, self.legal)
        self.t += 1
        if self.t == self.crash_at:
            raise RuntimeError("simulator segfaulted")
        return self._step(float(index), self.t >= 3)


def factory(crash_at: int = -1):
    created: list[TaskSpec] = []

    def make(spec: TaskSpec, settings: EnvSettings, seed: int | None) -> TaskEnv:
        created.append(spec)
        if spec.suite == "text":
            return FakeTextEnv(spec, crash_at)
        return make_env(spec, settings, seed)

    return make, created


MIXED = TaskSet((get_task("atari/Pong"), TEXT_SPEC, get_task("dmc/cheetah-run")))


def test_mixed_batch_masks_and_modalities() -> None:
    make, _ = factory()
    env = MultiTaskEnv(MIXED, envs_per_task=[2, 1, 1], factory=make)
    obs = env.reset()
    assert obs.task_ids.tolist() == [0, 0, 1, 2]
    assert obs.legal.shape == (4, 20)  # widest discrete/text choice: 20 offered commands
    assert obs.legal[0, :18].all() and not obs.legal[0, 18:].any()  # Atari: 18 actions
    assert obs.legal[2].sum() == 4 and obs.legal[2, :4].all()  # text: 4 commands now
    assert not obs.legal[3].any()  # continuous rows choose no index
    assert obs.image.shape == (2, 3, 64, 64) and obs.image_rows.tolist() == [0, 1]
    assert obs.vector.shape == (1, 17) and obs.vector_rows.tolist() == [3]
    assert obs.text == ("room 0",) and obs.commands == (("north", "south", "take coin", "look"),)
    actions = ActionBatch(index=np.array([3, 0, 2, 0]), vector=np.ones((4, 6), dtype=np.float32))
    batch = env.step(actions)
    assert batch.reward[2] == 2.0 and batch.obs.text == ("room 1",)


def test_auto_reset_reports_episode_and_final_observation() -> None:
    make, _ = factory()
    env = MultiTaskEnv(TaskSet((TEXT_SPEC,)), envs_per_task=2, factory=make)
    env.reset()
    ends = []
    for _ in range(3):
        batch = env.step([1, 2])
        ends.extend(batch.episodes)
    assert batch.terminated.tolist() == [True, True]
    assert [(e.row, e.episode_return, e.length, e.terminated) for e in ends] == [
        (0, 3.0, 3, True),
        (1, 6.0, 3, True),
    ]
    assert batch.final_obs == {0: "room 3", 1: "room 3"}
    assert batch.obs.text == ("room 0", "room 0")  # already reset
    assert list(env.recent_returns[0]) == [3.0, 6.0]


def test_stepping_some_rows_leaves_the_others_as_they_were() -> None:
    make, _ = factory()
    env = MultiTaskEnv(TaskSet((TEXT_SPEC,)), envs_per_task=3, factory=make)
    env.reset()
    batch = env.step([1, 2, 3], rows=[0, 2])
    assert batch.reward.tolist() == [1.0, 0.0, 3.0]  # row 1 did not step
    assert batch.obs.text == ("room 1", "room 0", "room 1")
    observed = env.observe([2, 1])
    assert observed.text == ("room 1", "room 0") and observed.task_ids.tolist() == [0, 0]
    for _ in range(2):
        batch = env.step([0, 1, 0], rows=[1])
    assert env.observe([1]).text == ("room 2",) and env.observe([0]).text == ("room 1",)
    with pytest.raises(RuntimeError, match="before reset"):
        MultiTaskEnv(TaskSet((TEXT_SPEC,)), factory=make).observe([0])


def test_crashed_env_is_recreated_and_reported_not_fatal() -> None:
    make, created = factory(crash_at=2)
    tasks = TaskSet((TEXT_SPEC, get_task("classic/CartPole")))
    env = MultiTaskEnv(tasks, envs_per_task=1, factory=make)
    env.reset()
    env.step([0, 0])
    batch = env.step([0, 0])  # the text env raises on its 2nd step
    assert [(f.row, f.task_id) for f in batch.failures] == [(0, 0)]
    assert "simulator segfaulted" in batch.failures[0].error
    assert batch.truncated[0] and not batch.terminated[0]
    assert len(created) == 3  # two at start, one re-created
    assert batch.obs.text == ("room 0",)  # the fresh env's first observation
    assert env.step([0, 0]).failures == ()  # and the batch goes on


def test_bad_actions_and_order_errors() -> None:
    make, _ = factory()
    env = MultiTaskEnv(TaskSet((TEXT_SPEC,)), factory=make)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step([0])
    env.reset()
    with pytest.raises(ValueError, match="illegal action 7"):
        env.step([7])
    with pytest.raises(ValueError, match="2 actions for 1 environments"):
        env.step([0, 1])
    with pytest.raises(ValueError, match="envs_per_task"):
        MultiTaskEnv(TaskSet((TEXT_SPEC,)), envs_per_task=0, factory=make)


def test_image_tasks_with_different_frame_shapes_share_one_padded_array() -> None:
    # Before MinAtar a batch rejected mixed frame shapes; now frames are zero-padded to the
    # task set's largest shape (as vectors are), and each row crops back to its own.
    env = MultiTaskEnv(["atari/Pong", "minatar/Seaquest"], seed=3)
    obs = env.reset()
    assert env.tasks.max_image_shape == (10, 64, 64)
    assert obs.image.shape == (2, 10, 64, 64) and obs.image.dtype == np.uint8
    pong, seaquest = obs.image
    assert pong[:3].any() and not pong[3:].any()  # RGB, then zero channels
    assert seaquest[:, :10, :10].any() and not seaquest[:, 10:].any()
    assert not seaquest[:, :, 10:].any()
    env.close()


def test_real_tasks_step_together_with_per_task_returns() -> None:
    env = MultiTaskEnv(["classic/CartPole", "dmc/pendulum-swingup"], envs_per_task=2, seed=5)
    obs = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(130):
        actions = [int(rng.integers(2)), int(rng.integers(2))] + [
            rng.uniform(-1, 1, 1).astype(np.float32) for _ in range(2)
        ]
        obs = env.step(actions).obs
    assert obs.vector.shape == (4, 4) and obs.vector_dims.tolist() == [4, 4, 3, 3]
    assert len(env.recent_returns[0]) > 0 and len(env.recent_returns[1]) == 2
    specs = env.specs
    assert specs[1] == replace(get_task("dmc/pendulum-swingup"))


def test_task_set_follows_the_settings_of_the_envs() -> None:
    settings = EnvSettings().with_overrides({"atari.size": 32, "text.max_commands": 6})

    def make(spec: TaskSpec, settings: EnvSettings, seed: int | None) -> TaskEnv:
        if spec.suite == "text":
            return FakeTextEnv(replace(spec, action=ActionSpace("text", n=6)))
        return make_env(spec, settings, seed)

    env = MultiTaskEnv(MIXED, settings=settings, factory=make)
    assert env.tasks[0].obs_shape == (3, 32, 32) and env.tasks[1].action.n == 6
    obs = env.reset()
    assert obs.legal.shape == (3, 18) and obs.image.shape == (1, 3, 32, 32)
