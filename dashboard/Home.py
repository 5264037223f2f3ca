"""PneumoNet dashboard entry point: `streamlit run dashboard/Home.py` from the project root.

This script only sets up the page, reads who the visitor is (`dashboard/auth.py`: sign-in is off
without `[auth]` in `.streamlit/secrets.toml`) and builds the navigation from the pages their
role may open (`dashboard/navigation.py` lists the pages). Every page lives in
`dashboard/views/`. Nothing here imports TensorFlow, Keras or MLflow, so the Home page appears
quickly. The `dashboard` package is installed with the project
(`pip install -e .`).
"""

import streamlit as st

from dashboard import auth, layout, navigation, runtime

st.set_page_config(
    page_title="PneumoNet",
    page_icon=":material/radiology:",
    layout="wide",
    initial_sidebar_state="expanded",
)
runtime.keep_models_between_runs()  # from the first run: the shared model is never cleared
layout.apply_styles()
visitor = auth.access()
auth.record_sign_in_once(visitor)
page = navigation.build(visitor)
if visitor.role is not None:  # nothing in the sidebar before sign-in or without a role
    layout.sidebar_footer(visitor)
page.run()
