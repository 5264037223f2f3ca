"""PneumoNet dashboard entry point: `streamlit run dashboard/Home.py` from the project root.

This script only sets up the page and the navigation (`dashboard/navigation.py` lists the pages).
Every page lives in `dashboard/views/`. Nothing here imports TensorFlow, Keras or MLflow, so the
Home page appears quickly.
"""

import sys
from pathlib import Path

import streamlit as st

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from dashboard import layout, navigation  # noqa: E402  (needs the project root on sys.path)

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
