"""The shared model survives Streamlit's clean-up after each script run."""

from __future__ import annotations

from dashboard import runtime


def test_streamlit_clean_up_keeps_keras_state_and_still_closes_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    from keras.src.backend.common import global_state
    from streamlit.runtime.scriptrunner import script_runner

    runtime.keep_models_between_runs()
    global_state.set_global_attribute("pneumonet_probe", 7)
    pyplot.figure()

    script_runner._clean_problem_modules()  # what Streamlit calls after every run

    assert global_state.get_global_attribute("pneumonet_probe") == 7
    assert pyplot.get_fignums() == []
