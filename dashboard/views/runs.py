"""Runs: every training run with its parameters, metrics, status and duration; the model
registry's versions, with promotion of a finished run and rollback (role ml)."""

import streamlit as st

from dashboard import auth, layout, model_registry, models, runs

st.title("Runs")
st.caption("Every training run recorded in the MLflow tracking store, newest first.")

with layout.guard("read the runs"):
    table = runs.runs_table()
    if table.empty:
        st.info("No runs recorded yet. Start one on the Train page.", icon=":material/history:")
    else:
        st.dataframe(runs.summary_table(table), hide_index=True, width="stretch")
        st.caption(runs.FIGURES_NOTE)
        with st.expander("Every parameter and metric"):
            st.dataframe(
                table, hide_index=True, width="stretch", column_config=runs.RUN_COLUMN_CONFIG
            )
        layout.csv_download("Download table (CSV)", table, "pneumonet_runs.csv")


def promote_run_form() -> None:
    """Pick a finished run, see the promotion gate's verdict on its model, and promote it."""
    choices = runs.promotable_runs()
    if not choices:
        st.caption("No finished run with a saved model to promote yet.")
        return
    label = st.selectbox("Finished run", list(choices), key="promote_run_choice")
    verdict = None
    with layout.guard("check the run's model with the promotion gate"):
        verdict = model_registry.promotion_verdict(choices[label])
    if verdict is None:
        return
    table = model_registry.verdict_table(verdict)
    pressed, reason = layout.promotion_gate(verdict, table, key="promote_run")
    if pressed:
        with layout.guard("promote the run's model"):
            version = model_registry.promote(choices[label], override_reason=reason)
            name = model_registry.version_label(version)
            st.toast(f"Promoted: {name} is now the active model.", icon=":material/verified:")
            st.rerun()


def rollback_form(versions) -> None:
    """Pick an earlier registry version and make it the active one again.

    Args:
        versions: `model_registry.versions_table()` (not empty).
    """
    earlier = [int(number) for number in versions.loc[~versions["active"], "version"]]
    if not earlier:
        return
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    number = left.selectbox(
        "Earlier version", earlier, format_func=lambda v: f"version {v}", key="rollback_version"
    )
    if right.button("Roll back to it", icon=":material/undo:", key="rollback"):
        with layout.guard("roll back"):
            version = model_registry.rollback(number)
            name = model_registry.version_label(version)
            st.toast(f"Rolled back: {name} is now the active model.", icon=":material/undo:")
            st.rerun()


st.header("Models")
st.caption(
    "Promoted models are versions of the MLflow registered model `pneumonet`; the alias "
    "`active` names the one Predict, Evaluate and the command line use."
)
if models.promotion_is_overridden():
    st.warning(
        "PNEUMONET_MODEL is set, so it decides the model in use: promoting or rolling back "
        "changes the registry only.",
        icon=":material/warning:",
    )
with layout.guard("read the model registry"):
    versions = model_registry.versions_table()
    if versions.empty:
        st.info("No model promoted yet: the shipped model is in use.", icon=":material/inventory:")
        legacy = model_registry.legacy_promoted_model()
        if legacy is not None:
            st.caption(
                f"A model promoted before the registry, at `{legacy}`, is no longer used; "
                f"register it with `pneumonet model promote {legacy}`."
            )
    else:
        st.dataframe(versions, hide_index=True, width="stretch")
    if auth.may("ml"):
        promote_run_form()
        if not versions.empty:
            rollback_form(versions)

st.header("Open the same store in the MLflow UI")
st.markdown(
    "Run this in a terminal from the project root (with the project's virtual environment), "
    "then open the address it prints:"
)
st.code(runs.mlflow_ui_command(), language="bash")
st.caption(f"Tracking URI: `{runs.tracking_uri()}`")
