"""The progress display (rich): a live bar and per-suite task tables on a terminal, plain lines
in logs; a 30-task run stays within 100 columns; the driver and `mtrl eval` share the class."""

import io
import logging
import re
import sys

import pytest

from mtrl.envs.registry import get_suite
from mtrl.runtime.metrics import MAX_WIDTH, Progress

# launch/mixed.py's tasks: 8 Atari games, the 18 DMC tasks and 4 text games, 30 in all.
TASKS = tuple(spec.id for suite in ("atari8", "dmc18", "text") for spec in get_suite(suite))
RATES = {"env_steps_per_s": 11.2, "searches_per_s": 0.3, "updates_per_s": 1.2}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def visible_lines(text: str) -> list[str]:
    return [line for line in re.split(r"[\r\n]", ANSI.sub("", text)) if line.strip()]


def played(progress: Progress) -> Progress:
    for i, task in enumerate(TASKS):
        for k in range(i % 3):  # a third of the tasks have no episode yet
            progress.episode(task, 1_000.0 * i + k)
    return progress


def test_log_gets_plain_lines_grouped_by_suite_within_100_columns() -> None:
    stream = io.StringIO()
    progress = played(Progress(100_000_000, TASKS, stream))
    progress.show(1_234_567, 12_345, RATES)
    out = stream.getvalue()
    lines = out.splitlines()
    assert "\x1b" not in out and all(line.startswith("[mtrl] ") for line in lines)
    assert max(len(line) for line in lines) <= MAX_WIDTH
    assert len(lines) < len(TASKS) / 2  # packed per suite, not one line per task
    assert "env steps 1,234,567/100,000,000 (1%)" in out and "11.2 env steps/s" in out
    heads = [line for line in lines if "recent return:" in line]
    assert [h.split("(")[0].split()[-1] for h in heads] == ["atari", "dmc", "text"]
    assert "atari (8 tasks, 7 episodes)" in heads[0] and "text (4 tasks, " in heads[2]
    assert "MsPacman 1,000.0" in out and "Pong -" in out  # the mean of its last episodes
    assert "Seaquest 2,000.5" in out and "dmc/cartpole-balance" not in out
    for task in TASKS:
        assert task.split("/")[1] in out


def test_terminal_gets_a_live_display_with_a_table_per_suite(monkeypatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    stream = Terminal()
    progress = played(Progress(100_000_000, TASKS, stream, width=MAX_WIDTH))
    assert progress.tty
    progress.show(1_234_567, 12_345, RATES)
    progress.line("a log line above the display")
    progress.show(2_345_678, 23_456, RATES)
    progress.close()
    out = stream.getvalue()
    lines = visible_lines(out)
    assert max(len(line) for line in lines) <= MAX_WIDTH
    assert "\x1b[2K" in out and "\x1b[?25h" in out  # redrawn in place; cursor given back
    assert "a log line above the display" in lines
    titles = [line for line in lines if line.startswith(("atari (", "dmc (", "text ("))]
    assert {t.split(" (")[0] for t in titles} == {"atari", "dmc", "text"}
    # 8 games in three columns of three rows, filled top to bottom; the DMC names are longer:
    # two columns of nine, each name in full.
    atari = next(line for line in reversed(lines) if line.startswith("Pong"))
    assert atari.split()[::3] == ["Pong", "Boxing", "Hero"]
    dmc = next(line for line in reversed(lines) if line.startswith("acrobot-swingup"))
    assert dmc.split()[::3] == ["acrobot-swingup", "finger-turn_hard"]
    shown = {word for line in lines for word in line.split()}
    assert {task.split("/")[1] for task in TASKS} <= shown
    assert "env steps 2,345,678/100,000,000 (2%)" in out


def test_log_records_go_above_the_live_display(monkeypatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    handler = logging.StreamHandler(terminal)  # as logging.basicConfig makes before a run
    logging.getLogger().addHandler(handler)
    try:
        progress = Progress(10, TASKS[:2])
        progress.show(1)
        # Written straight to the terminal, the record would be erased by the next redraw.
        assert handler.stream is not terminal
        logging.getLogger("mtrl.test").warning("rollout worker 0 was restarted")
        progress.show(2)
        progress.close()
        assert handler.stream is terminal and sys.stdout is terminal
    finally:
        logging.getLogger().removeHandler(handler)
    lines = visible_lines(terminal.getvalue())
    assert "rollout worker 0 was restarted" in lines


def test_narrow_terminal_fits_fewer_tasks_across(monkeypatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    stream = Terminal()
    progress = played(Progress(10, TASKS, stream, width=70))
    progress.show(5)
    progress.close()
    lines = visible_lines(stream.getvalue())
    assert max(len(line) for line in lines) <= 70
    row = next(line for line in lines if line.startswith("Pong"))
    assert row.split()[::3] == ["Pong", "Alien"]  # two columns of four rows


def test_driver_and_eval_use_the_same_display() -> None:
    from mtrl.eval import progress as eval_progress
    from mtrl.eval import run
    from mtrl.runtime import driver

    assert driver.Progress is Progress and eval_progress.Progress is Progress
    assert run.evaluation_progress is eval_progress.evaluation_progress
    assert isinstance(eval_progress.evaluation_progress(4, TASKS[:2], io.StringIO()), Progress)


def test_eval_logs_one_line_per_episode_then_the_suites() -> None:
    from mtrl.eval.progress import episode_callback, evaluation_progress

    stream = io.StringIO()
    progress = evaluation_progress(3, ("atari/Pong", "dmc/cartpole-swingup"), stream)
    on_episode = episode_callback(progress)
    on_episode("atari/Pong", 7, 0, -21.0)
    on_episode("dmc/cartpole-swingup", 7, 0, 812.5)
    assert stream.getvalue().splitlines() == [
        "[mtrl] [1/3] atari/Pong seed 7 episode 0: return -21",
        "[mtrl] [2/3] dmc/cartpole-swingup seed 7 episode 0: return 812.5",
    ]
    on_episode("atari/Pong", 7, 1, -19.0)
    tail = stream.getvalue().splitlines()[3:]
    assert tail[0].startswith("[mtrl] episodes 3/3 (100%)")
    assert tail[1:] == [
        "[mtrl]   atari (1 task, 2 episodes), recent return: Pong -20.0",
        "[mtrl]   dmc (1 task, 1 episodes), recent return: cartpole-swingup 812.5",
    ]


@pytest.mark.parametrize("tty", [False, True])
def test_eval_on_a_terminal_redraws_instead_of_logging(monkeypatch, tty: bool) -> None:
    from mtrl.eval.progress import episode_callback, evaluation_progress

    monkeypatch.setenv("TERM", "xterm-256color")
    stream = Terminal() if tty else io.StringIO()
    progress = evaluation_progress(2, ("atari/Pong",), stream, width=80)
    on_episode = episode_callback(progress)
    on_episode("atari/Pong", 7, 0, -21.0)
    assert (progress.live is not None) == tty
    on_episode("atari/Pong", 7, 1, -20.0)
    progress.close()
    lines = visible_lines(stream.getvalue())
    assert any("episodes 2/2 (100%)" in line for line in lines)
    assert any("seed 7 episode 1" in line for line in lines) == (not tty)
