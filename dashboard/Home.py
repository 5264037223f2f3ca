"""PneumoNet dashboard entry point: `streamlit run dashboard/Home.py` from the project root.

This script only sets up the page and the navigation (`dashboard/navigation.py` lists the pages).
Every page lives in `dashboard/views/`. Nothing here imports TensorFlow, Keras or MLflow, so the
Home page appears quickly. The `dashboard` package is installed with the project
(`pip install -e .`).
"""

import streamlit as st

from dashboard import layout, navigation

st.set_page_config(
    page_title="PneumoNet",
    page_icon=":material/radiology:",
    layout="wide",
    initial_sidebar_state="expanded",
)
layout.apply_styles()
page = navigation.build()
layout.sidebar_footer()
page.run()
