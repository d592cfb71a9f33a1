"""The TensorBoard layout: one event file whose regexes match the runtime's tag scheme."""

import re

import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.custom_scalar import layout_pb2, metadata

from mtrl.cli import main, tensorboard_command
from mtrl.eval.tensorboard import write_layout

TASKS = ["classic/CartPole", "atari/Pong", "dmc/cartpole-balance", "atari/Boxing"]


def read_layout(path) -> layout_pb2.Layout:
    for event in EventFileLoader(str(path)).Load():
        for value in event.summary.value:
            if value.tag == metadata.CONFIG_SUMMARY_TAG:
                # TensorBoard routes the layout to its custom-scalars plugin by this name.
                assert value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME
                return layout_pb2.Layout.FromString(value.tensor.string_val[0])
    raise AssertionError("no layout in the event file")


def charts(layout: layout_pb2.Layout) -> dict[str, list[str]]:
    return {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}


def matches(patterns: list[str], tag: str) -> bool:
    return any(re.fullmatch(p, tag) for p in patterns)


def test_layout_groups_returns_by_suite_and_matches_the_tag_scheme(tmp_path) -> None:
    path = write_layout(tmp_path, TASKS)
    layout = read_layout(path)
    titles = [c.title for c in layout.category]
    assert titles[:3] == ["returns / classic", "returns / atari", "returns / dmc"]
    found = charts(layout)
    assert found["atari: return"] == [
        re.escape("atari/Pong/return"),
        re.escape("atari/Boxing/return"),
    ]
    assert matches(found["dmc: eval return"], "dmc/cartpole-balance/eval_return")
    assert matches(found["atari/Pong"], "atari/Pong/expert_load/3")
    assert not matches(found["atari/Pong"], "atari/Boxing/expert_load/3")
    assert matches(found["HNS (Atari): mean, median, IQM"], "aggregate/hns_iqm")
    assert matches(found["total losses"], "loss/total")
    assert not matches(found["total losses"], "loss/atari/Pong/value")
    assert matches(found["atari/Pong losses"], "loss/atari/Pong/value")
    assert matches(found["stage"], "dps/stage")
    assert matches(found["mean pairwise cosine"], "gradients/mean_cosine")
    assert matches(found["env steps per s"], "throughput/env_steps_per_s")


def test_rewriting_keeps_one_layout_and_bad_ids_fail(tmp_path) -> None:
    write_layout(tmp_path, TASKS[:1])
    second = write_layout(tmp_path, TASKS)
    assert [p.name for p in tmp_path.iterdir()] == [second.name]
    assert "atari: return" in charts(read_layout(second))
    with pytest.raises(ValueError, match="<suite>/<name>"):
        write_layout(tmp_path, ["Pong"])


def test_tensorboard_binds_loopback_and_rejects_missing_run(tmp_path, capsys) -> None:
    command = tensorboard_command("runs/a", 6100)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "6100"
    assert main(["tensorboard", str(tmp_path / "nope")]) == 2
    assert "run directory" in capsys.readouterr().err
