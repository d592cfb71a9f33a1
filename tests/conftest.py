"""Test-session settings: offline, headless, and a private cache for generated games/builds."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
