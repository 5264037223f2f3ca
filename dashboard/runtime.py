"""How the Streamlit runtime treats the model that every session shares.

After every script and fragment run, Streamlit calls `keras.backend.clear_session()` when Keras
is imported (`script_runner._clean_problem_modules`), for apps that build a new model on each
run. PneumoNet builds none: one cached `Predictor` serves all sessions. Clearing costs a full
garbage collection and TensorFlow's kernel cache on every run (about 1.4 s on two cores, and the
next Grad-CAM is then about 8 times slower), so with a few sessions open, each refreshing its
sidebar every few seconds, the server spent its time clearing instead of predicting. Here
Streamlit's clean-up keeps its other duty (closing pyplot figures) and leaves Keras alone,
from the app's first run (`Home.py`), so that no clearing can race a model being loaded.
"""

from __future__ import annotations

import sys
from contextlib import suppress

_installed = False


def keep_models_between_runs() -> None:
    """Stop Streamlit from clearing Keras' global state after each run (idempotent)."""
    global _installed
    if _installed:
        return
    from streamlit.runtime.scriptrunner import script_runner

    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = _close_pyplot_figures
    _installed = True


def _close_pyplot_figures() -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        with suppress(Exception):  # never stop a run over figure clean-up
            pyplot.close("all")
