"""Evaluate: a model on a split, with a threshold slider driving every metric and chart; an ml
user can save the threshold as the active registry version's site operating point."""

import streamlit as st

from dashboard import (
    auth,
    charts,
    evaluate_sections,
    evaluation,
    evaluation_folders,
    inference,
    layout,
    metrics,
    model_registry,
    models,
    report,
    text,
)

ALL = "all"
PER_CLASS_OPTIONS = [25, 50, 100, 200, 500, ALL]
VALIDATION_LABEL = "Validation split (the model's patients, carved from train/)"
OTHER_FOLDER_LABEL = "Another folder…"
GALLERY_COLUMNS = 3

st.title("Evaluate")
st.caption(
    "Predictions are computed once per model and image set; moving the threshold only "
    "recomputes the metrics."
)
layout.intended_use_note()


def choose_images(model_path: str) -> evaluation.EvaluationSet | None:
    """The split picker: `test/` first, the other folders of the configured data roots, the
    model's validation split, and (role ml) a folder typed under those roots.

    Args:
        model_path: The model whose validation split is offered.

    Returns:
        The chosen images, or None until a usable folder is given.
    """
    roots = evaluation_folders.data_roots()
    data_root = str(roots[0])
    folders = evaluation_folders.root_folders(roots)
    may_type = auth.may("ml")
    validation = [VALIDATION_LABEL] if (roots[0] / "train").is_dir() else []
    options = [*folders, *validation, *([OTHER_FOLDER_LABEL] if may_type else [])]
    if not options:
        st.info(
            "No labelled folder under the data roots, and no train/ folder to carve the "
            "validation split from.",
            icon=":material/folder_open:",
        )
        return None
    left, right = st.columns([2, 1])
    choice = left.selectbox("Evaluate on", options, key="evaluate_split")
    per_class = right.select_slider(
        "Images per class",
        PER_CLASS_OPTIONS if may_type else PER_CLASS_OPTIONS[:-1],
        value=evaluation_folders.DEFAULT_MAX_PER_CLASS,
        key="evaluate_per_class",
    )
    st.caption(
        f"At most {per_class} images per class"
        + (f" (default {evaluation_folders.DEFAULT_MAX_PER_CLASS})." if per_class != ALL else ".")
    )
    max_per_class = None if per_class == ALL else int(per_class)
    if choice == VALIDATION_LABEL:
        return validation_images(model_path, data_root, max_per_class)
    folder = folders.get(choice)
    if folder is None:
        typed = st.text_input(
            "Folder holding NORMAL/ and PNEUMONIA/, under the data roots", key="evaluate_folder"
        )
        if not typed.strip():
            st.info("Enter a folder to evaluate on.", icon=":material/folder_open:")
            return None
        folder = str(evaluation_folders.typed_folder(typed))
    return evaluation.evaluation_set(evaluation.FOLDER_SPLIT, folder, max_per_class=max_per_class)


def validation_images(
    model_path: str, data_root: str, max_per_class: int | None
) -> evaluation.EvaluationSet:
    """The model's patient-grouped validation split, carved from the configured data root,
    with a note when those files are not the model's training data."""
    split_settings = evaluation.validation_split_settings(model_path, data_root)
    difference = evaluation.training_data_difference(model_path, data_root)
    if difference:
        st.warning(f"Note: {difference}.", icon=":material/warning:")
    else:
        st.caption("Same files as the model's training data (fingerprint matches).")
    return evaluation.evaluation_set(
        evaluation.VALIDATION_SPLIT,
        data_root,
        val_fraction=split_settings["val_fraction"],
        seed=split_settings["seed"],
        subset_per_class=split_settings["subset_per_class"],
        max_per_class=max_per_class,
    )


def threshold_slider(scores: evaluation.ModelScores, start: float) -> float:
    """The operating threshold slider, with suggested thresholds listed below it.

    Args:
        scores: The primary model's predictions.
        start: Where the slider starts: the model's threshold, or its site operating point.

    Returns:
        The chosen threshold.
    """
    threshold = st.slider(
        "Decision threshold (probability at or above it is called PNEUMONIA)",
        0.0,
        1.0,
        value=round(start, 2),
        step=0.01,
        key=f"evaluate_threshold_{scores.model_path}",
    )
    suggestions = metrics.suggested_thresholds(scores)
    st.caption(
        "Suggested thresholds: "
        + " · ".join(f"{name} {value:.2f}" for name, value in suggestions.items())
    )
    return threshold


def operating_point_section(target, image_set: evaluation.EvaluationSet, threshold: float) -> None:
    """The active registry version's site operating point, and (role ml) saving the threshold
    as a new one, with the evidence of a whole labelled folder.

    Args:
        target: The active version being evaluated (`model_registry.operating_point_target`).
        image_set: The images evaluated.
        threshold: The slider's threshold.
    """
    st.subheader("Site operating point")
    if target.operating_point is not None:
        saved = model_registry.describe_operating_point(target.operating_point)
        st.caption(f"{target.label} uses {saved}.")
    else:
        st.caption(f"{target.label} uses the threshold saved in its model file.")
    if not auth.may("ml"):
        return
    if image_set.kind != evaluation.FOLDER_SPLIT or not image_set.complete:
        st.caption(
            "To save a threshold for this site, evaluate on every image of a labelled local "
            "folder (Images per class: all)."
        )
        return
    if not 0 < threshold < 1:
        st.caption("A site operating point lies strictly between 0 and 1.")
        return
    label = f"Save threshold {threshold:.2f} as the site operating point of {target.label}"
    if st.button(label, key="save_operating_point", icon=":material/tune:"):
        with layout.guard("save the site operating point"), st.spinner("Scoring the folder…"):
            point = model_registry.save_operating_point(target, image_set.folder, threshold)
            evidence = point.evidence
            st.success(
                f"Saved: {model_registry.describe_operating_point(point)} (sensitivity "
                f"{evidence.sensitivity:.3f}, specificity {evidence.specificity:.3f}). "
                "Predict and the command line now use it.",
                icon=":material/tune:",
            )


def record_evaluation(model_path, image_set, scores, threshold, threshold_metrics) -> None:
    """An `evaluate` audit entry for this model and image set (once a session): the set's
    fingerprint and size and the metrics, never a file name."""
    summary = models.model_summary(model_path)
    evaluation_folders.record_evaluation_once(
        model_version=summary.source if summary else "unknown",
        model_sha256=models.model_sha256(model_path),
        kind=image_set.kind,
        fingerprint=evaluation_folders.set_fingerprint(
            scores.paths, scores.labels.tolist(), image_set.folder
        ),
        threshold=threshold,
        threshold_metrics=threshold_metrics,
        images=len(scores.paths),
    )


def headline_metrics(threshold_metrics: dict) -> None:
    """Sensitivity, specificity, accuracy, F1 and precision at the threshold.

    Args:
        threshold_metrics: From `metrics.metrics_at`.
    """
    columns = st.columns(5)
    for column, key, label in zip(
        columns,
        ("sensitivity", "specificity", "accuracy", "f1", "precision"),
        ("Sensitivity", "Specificity", "Accuracy", "F1", "Precision"),
        strict=True,
    ):
        column.metric(label, layout.format_metric(threshold_metrics[key]))


def gallery(scores: evaluation.ModelScores, threshold: float) -> list[report.ReportImage]:
    """Misclassified images (false positives and false negatives) with their Grad-CAM.

    Args:
        scores: The primary model's predictions.
        threshold: The operating threshold.

    Returns:
        The overlays shown, for the report.
    """
    opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.45, 0.05, key="evaluate_opacity")
    counts = metrics.metrics_at(scores, threshold)["confusion_matrix"]
    shown = []
    tabs = st.tabs([f"False positives ({counts['fp']})", f"False negatives ({counts['fn']})"])
    for tab, kind in zip(tabs, ("FP", "FN"), strict=True):
        with tab:
            examples = evaluation.misclassified(scores, threshold, kind=kind)
            if not examples:
                st.info("None at this threshold.", icon=":material/check:")
                continue
            st.caption("Most confident mistakes first.")
            columns = st.columns(GALLERY_COLUMNS)
            for index, example in enumerate(examples):
                caption = (
                    f"{example.path.rsplit('/', 1)[-1]} · true {example.true_label} · "
                    f"P(pneumonia) {example.probability:.2f}"
                )
                pixels = inference.overlay_image(example.image, example.heatmap, opacity)
                columns[index % GALLERY_COLUMNS].image(pixels, caption=caption, width="stretch")
                shown.append(report.ReportImage(f"{kind}: {caption}", pixels))
    return shown


def shortcut_section(model_path: str, image_set: evaluation.EvaluationSet) -> None:
    """The shortcut audit: the card's figures, and a run on the chosen images on request."""
    st.caption(
        "Does the model read the lungs? ROC-AUC with the lung region hidden should fall "
        "towards 0.5; with everything outside it hidden it should stay close to the whole "
        "image's. Lung region: a fixed box, rows 15–85% and columns 12–88% of the image."
    )
    summary = models.model_summary(model_path)
    if summary is not None and summary.shortcut_audit:
        st.subheader(f"From the model card ({summary.shortcut_audit.get('n', '?')} test/ images)")
        layout.shortcut_block(summary.shortcut_audit, evaluation.shortcut_targets())
    if st.toggle("Run the audit on these images (one Grad-CAM per image)", key="shortcuts"):
        with st.spinner("Hiding regions and explaining every image…"):
            audit = evaluation.shortcut_audit(model_path, image_set)
        st.subheader(f"Re-run on these {len(image_set.paths)} images")
        layout.shortcut_block(audit, evaluation.shortcut_targets())


model_choices = {}
with layout.guard("list the models"):
    model_choices = models.evaluation_models()
if not model_choices:
    st.info(
        "No model to evaluate yet: train one on the Train page.", icon=":material/model_training:"
    )
    st.stop()

model_label = st.selectbox("Model or run", list(model_choices), key="evaluate_model")
model_path = model_choices[model_label]

image_set = None
with layout.guard("find the images to evaluate on"):
    image_set = choose_images(model_path)
if image_set is None:
    st.stop()

scores = None
predicting = f"Predicting {len(image_set.paths)} images (once; then cached)…"
with layout.guard("predict the images"), st.spinner(predicting):
    scores = evaluation.model_scores(model_path, image_set, models.short_model_name(model_label))
if scores is None:
    st.stop()
st.caption(f"{len(scores.paths)} images: {image_set.description}.")
if scores.skipped:
    st.warning(f"{len(scores.skipped)} unreadable images were left out.", icon=":material/warning:")

target = None  # the active registry version, when it is the model evaluated
with layout.guard("read the model registry"):
    target = model_registry.operating_point_target(model_path)
site_threshold = target.threshold if target is not None else None
threshold = threshold_slider(scores, scores.threshold if site_threshold is None else site_threshold)
threshold_metrics = metrics.metrics_at(scores, threshold)
with layout.guard("record the evaluation in the audit trail"):
    record_evaluation(model_path, image_set, scores, threshold, threshold_metrics)
headline_metrics(threshold_metrics)
if target is not None:
    operating_point_section(target, image_set, threshold)

normalise = st.toggle("Normalise the matrix by true class", key="evaluate_normalise")
matrix = charts.confusion_matrix(
    threshold_metrics["confusion_matrix"], normalise=normalise, threshold=threshold
)
report_table = metrics.classification_report(scores, threshold)
left, right = st.columns([1, 1])
left.plotly_chart(matrix, config=charts.PLOTLY_CONFIG, width="stretch", key="confusion_matrix")
with right:
    st.markdown("**Classification report**")
    st.dataframe(
        report_table,
        width="stretch",
        column_config={
            name: st.column_config.NumberColumn(name, width="small")
            for name in report_table.columns
        },
    )
    st.markdown(
        f"ROC AUC **{layout.format_metric(threshold_metrics['roc_auc'])}** · "
        f"PR AUC **{layout.format_metric(threshold_metrics['pr_auc'])}** · "
        f"log loss {layout.format_metric(threshold_metrics['loss'])}"
    )

roc = charts.roc_curves([metrics.roc_curve(scores, threshold)])
pr = charts.pr_curves([metrics.pr_curve(scores, threshold)])
left, right = st.columns(2)
left.plotly_chart(roc, config=charts.PLOTLY_CONFIG, width="stretch", key="roc")
right.plotly_chart(pr, config=charts.PLOTLY_CONFIG, width="stretch", key="pr")
bins, ece = metrics.calibration(scores)
calibration = charts.calibration(bins, ece=ece)
distribution = charts.score_distribution(scores.labels, scores.scores, threshold)
left, right = st.columns(2)
left.plotly_chart(calibration, config=charts.PLOTLY_CONFIG, width="stretch", key="calibration")
right.plotly_chart(distribution, config=charts.PLOTLY_CONFIG, width="stretch", key="distribution")

st.header("Shortcut audit")
with layout.guard("audit the model for shortcuts"):
    shortcut_section(model_path, image_set)

st.header("Misclassified images")
gallery_images = []
with layout.guard("explain the misclassified images"):
    gallery_images = gallery(scores, threshold)

st.header("Compare models")
comparison_section = None
with layout.guard("compare the models"):
    comparison_section = evaluate_sections.comparison(model_choices, scores, image_set)

st.header("Report")
sections = [
    report.ReportSection(
        f"{scores.name} at threshold {threshold:.2f}",
        text=[
            f"{len(scores.paths)} images: {image_set.description}.",
            f"Model file: {model_path}",
        ],
        figures=[matrix, roc, pr, calibration, distribution],
        tables=[
            ("Headline metrics", metrics.metrics_table(threshold_metrics)),
            ("Classification report", report_table),
        ],
    ),
    report.ReportSection("Misclassified images (Grad-CAM)", images=gallery_images),
]
if comparison_section is not None:
    sections.append(comparison_section)
st.download_button(
    "Download report (HTML)",
    data=lambda: report.build_report("PneumoNet evaluation report", text.intended_use(), sections),
    file_name="pneumonet_evaluation_report.html",
    mime="text/html",
    on_click="ignore",
    icon=":material/download:",
)
st.caption("A single HTML file with every chart and table above; it opens offline.")
