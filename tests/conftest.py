"""Test-session settings: offline, headless, one torch thread per test process.

pytest-xdist runs one worker per core; torch's default of one thread per core in every worker
oversubscribes the machine, and small models then run many times slower.
"""

import os

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
torch.set_num_threads(1)
