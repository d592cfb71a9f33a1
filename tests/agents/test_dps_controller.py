import io
from dataclasses import replace

import pytest
import torch

from mtrl.agents.dps_controller import DpsController, DpsSchedule

TASKS = ("a", "b", "c", "d")
TARGETS = {"a": 10.0, "b": 10.0, "c": 10.0, "d": None}
SCHEDULE = DpsSchedule(
    num_stages=3, min_updates_first_stage=100, solved_per_switch=2, max_updates_per_stage=1000
)


def test_solved_tasks_leave_training_at_once() -> None:
    at_once = replace(SCHEDULE, train_solved_until_switch=False)
    dps = DpsController(TASKS, TARGETS, at_once)
    assert not dps.report_evaluation("a", 9.9, update=5)
    assert dps.report_evaluation("a", 10.0, update=6)
    assert not dps.report_evaluation("a", 50.0, update=7)  # already solved
    assert not dps.report_evaluation("d", 1e9, update=7)  # no target: never solved
    assert dps.active_tasks == dps.training_tasks == ("b", "c", "d")
    assert dps.best_return["a"] == 50.0


def test_mark_solved_off_keeps_every_task_and_still_advances_stages() -> None:
    dps = DpsController(TASKS, TARGETS, replace(SCHEDULE, mark_solved=False))
    assert not dps.report_evaluation("a", 50.0, update=6)  # above its target, not solved
    assert dps.active_tasks == dps.training_tasks == TASKS and not dps.all_solved
    assert dps.best_return["a"] == 50.0
    assert not dps.maybe_advance(999) and dps.maybe_advance(1000)  # by max_updates_per_stage


def test_solved_tasks_leave_collection_at_once_and_training_at_the_next_switch() -> None:
    dps = DpsController(TASKS, TARGETS, SCHEDULE)
    dps.report_evaluation("a", 10.0, update=6)
    assert dps.active_tasks == ("b", "c", "d")  # no more collection
    assert dps.training_tasks == TASKS  # still trained: the backbone it relies on still moves
    assert dps.maybe_advance(1000) and dps.stage == 1  # the backbone freezes
    assert dps.training_tasks == ("b", "c", "d")
    dps.report_evaluation("b", 10.0, update=1001)  # solved in stage 1: trains until stage 2
    assert dps.training_tasks == ("b", "c", "d") and dps.active_tasks == ("c", "d")
    assert dps.maybe_advance(2001) and dps.training_tasks == ("c", "d")


def test_no_switch_before_the_minimum_then_switch_on_enough_solved() -> None:
    dps = DpsController(TASKS, TARGETS, SCHEDULE)
    dps.report_evaluation("a", 11.0, update=10)
    dps.report_evaluation("b", 11.0, update=20)
    assert not dps.maybe_advance(99)  # two solved, but the first stage is too young
    assert dps.maybe_advance(100) and dps.stage == 1
    assert not dps.maybe_advance(101)  # those two were counted for the last switch
    dps.report_evaluation("c", 11.0, update=150)
    assert not dps.maybe_advance(200)  # one newly solved is not enough


def test_switch_after_max_updates_and_stop_at_last_stage() -> None:
    dps = DpsController(TASKS, TARGETS, SCHEDULE)
    assert not dps.maybe_advance(999)
    assert dps.maybe_advance(1000) and dps.stage == 1
    assert dps.maybe_advance(2000) and dps.stage == 2
    assert not dps.maybe_advance(10_000) and dps.stage == 2  # the last stage


def test_state_round_trips_through_a_safe_checkpoint() -> None:
    dps = DpsController(TASKS, TARGETS, SCHEDULE)
    dps.report_evaluation("b", 12.0, update=30)
    dps.maybe_advance(1000)
    buffer = io.BytesIO()
    torch.save(dps.state_dict(), buffer)
    buffer.seek(0)
    restored = DpsController(TASKS, TARGETS, SCHEDULE)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.state_dict() == dps.state_dict()
    assert restored.metrics()["dps/stage"] == 1.0 and restored.active_tasks == ("a", "c", "d")


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"no target return for tasks \['z'\]"):
        DpsController(("a", "z"), TARGETS)
    with pytest.raises(ValueError, match="num_stages must be >= 1"):
        DpsSchedule(num_stages=0)
    dps = DpsController(TASKS, TARGETS)
    with pytest.raises(ValueError, match="unknown task 'q'"):
        dps.report_evaluation("q", 1.0, 0)
    other = DpsController(("a", "b"), TARGETS)
    with pytest.raises(ValueError, match="DPS state is for tasks"):
        other.load_state_dict(dps.state_dict())
