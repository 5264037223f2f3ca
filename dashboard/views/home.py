"""Home: what PneumoNet is, the active model, the dataset found, and links to the other pages."""

import streamlit as st

from dashboard import dataset, layout, models, navigation, text

st.title("PneumoNet")
st.subheader("Pneumonia screening support for paediatric chest X-rays")
st.warning(text.intended_use(), icon=":material/health_and_safety:")
st.markdown(
    "PneumoNet is a convolutional neural network that estimates the probability of "
    "**pneumonia** on a frontal paediatric chest X-ray. It flags images for a clinician's "
    "attention; it does not replace reading the image, the clinical picture, or a radiologist."
)

st.markdown("**Limits**")
st.markdown("\n".join(f"- {item}" for item in models.model_limitations()))

st.header("Active model")
with layout.guard("read the active model"):
    summary = models.model_summary()
    if summary is None:
        st.info(
            "No model is available yet. Train one on the **Train** page and promote it, "
            f"or place a model at `{models.active_model_path()}`.",
            icon=":material/model_training:",
        )
    else:
        layout.model_summary_block(summary)

st.header("Dataset")
with layout.guard("scan the dataset"):
    layout.dataset_block(dataset.scan_dataset(dataset.default_data_root()))

st.header("Go to")
links = st.columns(4)
links[0].page_link(
    navigation.PAGE_FILES["predict"], label="Predict on X-rays", icon=":material/radiology:"
)
links[1].page_link(
    navigation.PAGE_FILES["evaluate"], label="Evaluate a model", icon=":material/analytics:"
)
links[2].page_link(
    navigation.PAGE_FILES["train"], label="Train a model", icon=":material/model_training:"
)
links[3].page_link(navigation.PAGE_FILES["runs"], label="All runs", icon=":material/table_view:")
