"""One image's result as Predict and the Worklist show it: the image, the Grad-CAM overlay with
its opacity slider (Grad-CAM computed when shown), the probability against the threshold, the
OOD warning, and the DICOM header only once asked for (layout only; the result comes from
`inference.predict_upload`)."""

import streamlit as st

from dashboard import inference, layout


@st.fragment
def heatmap_overlay(prediction: inference.ImagePrediction, key: str, shown: bool = True) -> None:
    """The Grad-CAM overlay with its own opacity slider, behind a toggle (reruns only this
    fragment); Grad-CAM runs only once the heatmap is shown.

    Args:
        prediction: A successful prediction.
        key: A unique key for the toggle and the slider.
        shown: Whether the toggle starts on.
    """
    if not st.toggle("Show Grad-CAM heatmap", value=shown, key=f"heatmap_{key}"):
        st.caption("Grad-CAM (where the model saw pneumonia) is computed when shown.")
        return
    opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.45, 0.05, key=f"opacity_{key}")
    st.image(inference.overlay(prediction, opacity), caption="Grad-CAM", width="stretch")


def dicom_header_expander(content: bytes, key: str) -> None:
    """Patient header fields, read only once the user opens the collapsed expander.

    Args:
        content: The DICOM file's bytes.
        key: A unique key for the expander.
    """
    expander = st.expander(
        "DICOM header (patient details)",
        expanded=False,
        key=f"dicom_{key}",
        on_change="rerun",
        icon=":material/badge:",
    )
    with expander:
        if expander.open:
            with layout.guard("read the DICOM header"):
                header = inference.dicom_header(content)
                st.table({"field": list(header), "value": list(header.values())})


def render_prediction(
    prediction: inference.ImagePrediction,
    content: bytes,
    key: str,
    audit_notice: str | None = None,
    show_heatmap: bool = True,
) -> None:
    """Show one image's result: image, probability against the threshold, label, Grad-CAM
    (for an image that is not a chest X-ray: no result, the probability behind an expander).

    Args:
        prediction: The result from `inference.predict_upload`.
        content: The uploaded bytes (for the DICOM header on request).
        key: A unique key for this file's widgets.
        audit_notice: A one-line notice when recording it in the audit trail failed.
        show_heatmap: Whether its Grad-CAM shows at once (else on the toggle, computed then).
    """
    with st.container(border=True):
        st.subheader(prediction.file_name)
        if audit_notice:
            st.caption(f":material/warning: {audit_notice}")
        if prediction.frame_note:
            st.caption(f":material/burst_mode: Multi-frame file: {prediction.frame_note}.")
        if prediction.error:
            st.error(f"Could not read this file. {prediction.error}", icon=":material/error:")
            return
        if prediction.is_not_a_chest_xray:
            not_a_chest_xray(prediction, key)
        else:
            if prediction.ood:
                st.warning(
                    f"{prediction.ood_reason}. The probability below is shown for reference only.",
                    icon=":material/warning:",
                )
            columns = st.columns([1, 1, 1])
            columns[0].image(prediction.image, caption="image", width="stretch", clamp=True)
            with columns[1]:
                heatmap_overlay(prediction, key, show_heatmap)
            with columns[2]:
                layout.probability_block(prediction, key)
        if prediction.is_dicom:
            dicom_header_expander(content, key)


def not_a_chest_xray(prediction: inference.ImagePrediction, key: str) -> None:
    """An image that is not a chest X-ray: no result and no label; the probability only on
    request, behind a collapsed expander.

    Args:
        prediction: A prediction whose image is not a chest X-ray.
        key: A unique key for this file's widgets.
    """
    st.warning(f"No result: {prediction.ood_reason}.", icon=":material/block:")
    left, _ = st.columns([1, 2])
    left.image(prediction.image, caption="image", width="stretch", clamp=True)
    with st.expander("Model output (not a result)", expanded=False, key=f"output_{key}"):
        st.caption(
            f"The model's probability of pneumonia was {prediction.probability:.1%}, but for "
            "an image that is not a chest X-ray it means nothing."
        )
