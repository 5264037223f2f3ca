"""Train: settings, start a background training run, follow it live, stop it, promote it."""

from datetime import timedelta

import streamlit as st

from dashboard import auth, charts, dataset, layout, model_registry, models, runs, text, training

LIVE_REFRESH = timedelta(seconds=layout.LIVE_REFRESH_SECONDS)

st.title("Train")
st.caption(
    "Training runs in a background process: it keeps going if you switch pages, refresh, or "
    "close the tab, and everyone sees the same job. Only one job runs at a time."
)


def dataset_check() -> str:
    """The dataset folder input, with its scan (counts and problems) shown below it.

    Returns:
        The folder entered.
    """
    folder = st.text_input(
        "Dataset folder",
        value=dataset.default_data_root(),
        key="train_data_dir",
        help="A folder holding train/NORMAL and train/PNEUMONIA (from PNEUMONET_DATA by default).",
    )
    with layout.guard("scan the dataset"):
        layout.dataset_block(dataset.scan_dataset(folder))
    return folder


def setting_widget(container, field: training.FormField):
    """Draw one setting's widget.

    Args:
        container: Where to draw it (a column, the form or an expander).
        field: The setting and how to show it.

    Returns:
        The widget's value.
    """
    if field.widget == "select":
        return container.selectbox(
            field.label,
            field.options,
            index=field.options.index(field.initial),
            format_func=(lambda value: format(value, field.format)) if field.format else str,
            key=field.key,
            help=field.help,
        )
    if field.widget in ("number", "slider"):
        draw = container.number_input if field.widget == "number" else container.slider
        step = {"step": field.step} if field.widget == "slider" else {}
        return draw(
            field.label,
            field.min_value,
            field.max_value,
            field.initial,
            key=field.key,
            help=field.help,
            **step,
        )
    if field.widget == "toggle":
        return container.toggle(field.label, value=field.initial, key=field.key, help=field.help)
    return container.text_input(field.label, value=field.initial, key=field.key, help=field.help)


def settings_form(data_dir: str, job_active: bool) -> dict | None:
    """The training settings, drawn from the core's `TrainConfig` fields, and the Start button.

    Args:
        data_dir: The dataset folder chosen above the form.
        job_active: Whether a job is already running (Start is then disabled).

    Returns:
        The settings when Start was pressed, else None.
    """
    fields = training.form_fields()
    values = {}

    def draw(section: str, columns) -> None:
        in_section = [field for field in fields if field.section == section]
        for index, field in enumerate(in_section):
            values[field.name] = setting_widget(columns[index % len(columns)], field)

    with st.form("train_settings", border=True):
        draw("main", st.columns(3))
        st.caption(
            "Designed input sizes: "
            + ", ".join(
                f"{name} {training.default_image_size(name)} px"
                for name in training.architectures()
            )
        )
        draw("switch", [st])
        with st.expander("Advanced"):
            draw("advanced", st.columns(3))
        started = st.form_submit_button(
            "Start training",
            type="primary",
            icon=":material/play_arrow:",
            disabled=job_active or not auth.may("ml"),
        )
    if not started:
        return None
    return training.form_settings(data_dir, values)


def progress_block(job: training.JobSummary) -> None:
    """Progress bar with epoch, batch, elapsed time and ETA.

    Args:
        job: The running job.
    """
    label = (
        f"{layout.progress_text(job).capitalize()} · batch {job.batch}/{job.batches or '?'} · "
        f"elapsed {text.format_duration(job.elapsed_seconds)} · "
        f"ETA {text.format_duration(job.eta_seconds)}"
    )
    if job.state == "starting" or (job.epoch == 0 and job.batch == 0):
        label = f"Preparing data and model… elapsed {text.format_duration(job.elapsed_seconds)}"
    st.progress(job.progress, text=label)


SUMMARY_FIGURES = {"accuracy": "accuracy", "auc": "roc_auc"}  # curve: the summary's figure


def curves_block(run_id: str | None, summary: models.ModelSummary | None = None) -> None:
    """Train-versus-validation curves for accuracy, loss and AUC.

    Args:
        run_id: The MLflow run, or None before the run has started.
        summary: The finished run's model: its best epoch and summary figures are marked.
    """
    if not run_id:
        st.caption("Curves appear after the first epoch.")
        return
    history = runs.run_history(run_id)
    if history.empty:
        st.caption("Curves appear after the first epoch.")
        return
    columns = st.columns(3)
    titles = ("Accuracy (threshold 0.50)", "Loss", "ROC AUC")
    for column, metric, title in zip(columns, ("accuracy", "loss", "auc"), titles, strict=True):
        point = None
        if summary is not None and summary.best_epoch:
            value = summary.metrics.get(SUMMARY_FIGURES.get(metric, ""))
            label = f"summary (threshold {summary.threshold:.2f})"
            point = (int(summary.best_epoch), value, label)
        column.plotly_chart(
            charts.training_curves(history, metric, title=title, summary_point=point),
            config=charts.PLOTLY_CONFIG,
            width="stretch",
            key=f"curve_{metric}",
        )


def finished_block(job: training.JobSummary) -> None:
    """The outcome of the last job: error, or the model and a Promote button.

    Args:
        job: The last job (no longer active).
    """
    if job.state == "failed":
        st.error(f"The last training run failed. {job.error or ''}", icon=":material/error:")
        with st.expander("Job log (last lines)"):
            st.code(training.job_log_tail(), language=None)
        return
    outcome = "was stopped" if job.state == "stopped" else "finished"
    name = training.run_display_name(job)
    st.success(f"The last run **{name}** {outcome}.", icon=":material/check_circle:")
    if not job.model_path:
        return
    summary = models.model_summary(job.model_path)
    if summary is None:
        st.warning("Its model file is no longer there.", icon=":material/warning:")
        return
    layout.model_summary_block(summary)
    if basis := models.summary_basis(summary):
        st.caption(f":material/timeline: {basis}")
    if models.promotion_is_overridden():
        st.caption("PNEUMONET_MODEL is set, so it decides the active model; promotion is off.")
        return
    if models.is_active_model(job.model_path):
        st.caption(":material/verified: This model is the active model.")
        return
    verdict = None
    with layout.guard("check the model with the promotion gate"):
        verdict = model_registry.promotion_verdict(job.model_path)
    if verdict is None:
        return
    if not auth.may("ml"):
        layout.promotion_gate_verdict(verdict, model_registry.verdict_table(verdict))
        return
    table = model_registry.verdict_table(verdict)
    pressed, reason = layout.promotion_gate(verdict, table, key="promote")
    if pressed:
        with layout.guard("promote the model"):
            training.require_ml_role("promote a model")
            models.promote_model(job.model_path, override_reason=reason)
            st.toast("Promoted: this is now the active model.", icon=":material/verified:")
            st.rerun()


def request_stop() -> None:
    """The Stop button's callback: ask the job to stop after its current batch."""
    with layout.guard("stop the training run"):
        training.stop_training()
        st.toast("Stopping after the current batch…", icon=":material/stop:")


@st.fragment(run_every=LIVE_REFRESH)
def live_job() -> None:
    """The job panel, refreshed every few seconds from the job status file and MLflow."""
    job = None
    with layout.guard("read the training job"):
        job = training.job_summary()
    if job is None:
        st.info("No training run yet.", icon=":material/hourglass_empty:")
        return
    if job.is_active != st.session_state.get("train_job_active_at_render"):
        st.rerun(scope="app")  # a job started or ended: refresh the Start button too
    if job.audit_error:
        st.warning(job.audit_error[:1].upper() + job.audit_error[1:], icon=":material/warning:")
    if job.is_active:
        verb = "Stopping" if job.state == "stopping" else "Running"
        st.subheader(f"{verb}: {training.run_display_name(job)}")
        progress_block(job)
        st.caption(training.settings_summary(job.settings))
        # A callback runs as soon as the press reaches the server, before any rerun, so a
        # press that lands during the live refresh is never lost.
        st.button(
            "Stop training",
            icon=":material/stop:",
            key="stop",
            type="secondary",
            on_click=request_stop,
            disabled=not auth.may("ml"),
        )
        with layout.guard("read the run's metrics"):
            curves_block(job.run_id)
    else:
        finished_block(job)
        with layout.guard("read the run's metrics"):
            summary = models.model_summary(job.model_path) if job.model_path else None
            curves_block(job.run_id, summary)


job = None
with layout.guard("read the training job"):
    job = training.job_summary()
job_active = bool(job and job.is_active)
st.session_state["train_job_active_at_render"] = job_active

st.header("Dataset")
data_dir = dataset_check()

st.header("Settings")
settings = None
with layout.guard("read the training defaults"):
    settings = settings_form(data_dir, job_active)
if job_active:
    st.caption("A job is running; Start is available again once it ends.")
if settings is not None:
    with layout.guard("start training"):
        training.start_training(settings)
        st.toast("Training started in the background.", icon=":material/play_arrow:")
        st.rerun()

st.header("Training job")
live_job()
