"""Text-adventure tasks: generated TextWorld games, Colossal Cave, and Jericho games.

Importing this package is cheap: textworld, jericho and adventure are imported only when an
environment is built (:func:`make_text_env`).
"""

from mtrl.envs.text.factory import make_text_env

__all__ = ["make_text_env"]
