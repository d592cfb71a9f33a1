"""Short clips of one evaluation episode per task: mp4 from RGB frames, or a transcript.

Frames come from the observation for image tasks and from the MuJoCo renderer for DMC state
tasks. Text games have no pixels: their clip is a transcript (.txt) of what the agent read,
the commands offered and the one it chose. Tasks with no renderer here (gymnasium classic
control needs pygame, which mtrl does not install) also get a transcript of states and actions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtrl.agents.acting import ActResult
from mtrl.envs.batch import ObsBatch
from mtrl.envs.vector import MultiTaskEnv

MAX_FRAMES = 300  # a short clip: ~10 s at 30 fps
FPS = 30
RENDER_SIZE = 240


def clip_name(task_id: str) -> str:
    return task_id.replace("/", "__")


class Recorder:
    """Records the first environment row of each task until its first episode ends."""

    def __init__(self, env: MultiTaskEnv, folder: Path) -> None:
        self.env, self.folder = env, folder
        folder.mkdir(parents=True, exist_ok=True)
        first_rows = np.searchsorted(env.task_ids, np.arange(len(env.tasks)))
        self.rows = {int(row): env.tasks[int(env.task_ids[row])].id for row in first_rows}
        self.frames: dict[int, list[np.ndarray]] = {row: [] for row in self.rows}
        self.lines: dict[int, list[str]] = {row: [] for row in self.rows}
        self.written: dict[str, Path] = {}

    def observe(self, obs: ObsBatch, result: ActResult) -> None:
        for row in self.rows:
            if self.rows[row] in self.written or len(self.lines[row]) >= MAX_FRAMES:
                continue
            frame = self._frame(obs, row)
            if frame is not None:
                self.frames[row].append(frame)
            self.lines[row].append(self._line(obs, row, result))

    def finish(self, row: int, episode_return: float) -> None:
        if row in self.rows and self.rows[row] not in self.written:
            self.lines[row].append(f"episode return: {episode_return:g}")
            self._write(row)

    def close(self) -> None:
        for row, task in self.rows.items():
            if task not in self.written:
                self._write(row)

    def _frame(self, obs: ObsBatch, row: int) -> np.ndarray | None:
        hits = np.flatnonzero(obs.image_rows == row)
        if hits.size:
            image = obs.image[hits[0]]
            return np.ascontiguousarray(image[:3].transpose(1, 2, 0))
        simulator = getattr(self.env._envs[row], "_env", None)  # the adapter's own simulator
        physics = getattr(simulator, "physics", None)
        if physics is not None:  # dm_control: render the state the agent just saw
            return physics.render(height=RENDER_SIZE, width=RENDER_SIZE, camera_id=0)
        return None

    def _line(self, obs: ObsBatch, row: int, result: ActResult) -> str:
        step = len(self.lines[row])
        text = np.flatnonzero(obs.text_rows == row)
        if text.size:
            commands = obs.commands[text[0]]
            index = int(result.action_index[row])
            chosen = commands[index] if index < len(commands) else f"#{index}"
            return (
                f"[{step}] {obs.text[text[0]].strip()}\n  offered: {list(commands)}\n  > {chosen}"
            )
        vector = np.flatnonzero(obs.vector_rows == row)
        state = np.round(obs.vector[vector[0], : obs.vector_dims[vector[0]]], 3).tolist()
        spec = self.env.tasks[int(self.env.task_ids[row])]
        action = (
            np.round(result.action_vector[row, : spec.action.dim], 3).tolist()
            if spec.action.is_continuous
            else int(result.action_index[row])
        )
        return f"[{step}] state {state} -> action {action}"

    def _write(self, row: int) -> None:
        task = self.rows[row]
        base = self.folder / clip_name(task)
        if self.frames[row]:
            self.written[task] = write_mp4(base.with_suffix(".mp4"), self.frames[row])
        else:
            path = base.with_suffix(".txt")
            note = f"{task}: no pixels to record; a transcript of the first evaluation episode\n"
            path.write_text(note + "\n".join(self.lines[row]) + "\n")
            self.written[task] = path


def write_mp4(path: Path, frames: list[np.ndarray]) -> Path:
    import cv2

    height, width = frames[0].shape[:2]
    scale = max(1, RENDER_SIZE // max(height, width))  # 64x64 Atari frames are tiny
    size = (width * scale, height * scale)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    try:
        for frame in frames:
            big = cv2.resize(frame, size, interpolation=cv2.INTER_NEAREST)
            writer.write(cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path
