"""Runs: every training run with its parameters, metrics, status and duration."""

import streamlit as st

from dashboard import layout, runs

st.title("Runs")
st.caption("Every training run recorded in the MLflow tracking store, newest first.")

with layout.guard("read the runs"):
    table = runs.runs_table()
    if table.empty:
        st.info("No runs recorded yet. Start one on the Train page.", icon=":material/history:")
    else:
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={"run_id": st.column_config.TextColumn("run id", width="small")},
        )
        layout.csv_download("Download table (CSV)", table, "pneumonet_runs.csv")

st.header("Open the same store in the MLflow UI")
st.markdown(
    "Run this in a terminal from the project root (with the project's virtual environment), "
    "then open the address it prints:"
)
st.code(runs.mlflow_ui_command(), language="bash")
st.caption(f"Tracking URI: `{runs.tracking_uri()}`")
