"""Home: what PneumoNet is, the active model, the dataset found, and links to the other pages."""

import streamlit as st

from dashboard import auth, dataset, layout, models, navigation, text

st.title("PneumoNet")
st.subheader("Pneumonia screening support for paediatric chest X-rays")
st.warning(text.intended_use(), icon=":material/health_and_safety:")
if not auth.access().sign_in:
    st.info(
        "Sign-in is off: anyone who can reach this computer's dashboard at localhost has every "
        "role. The README's section on sign-in and roles says how to turn it on.",
        icon=":material/lock_open:",
    )
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
LINKS = (
    ("predict", "Predict on X-rays", ":material/radiology:"),
    ("evaluate", "Evaluate a model", ":material/analytics:"),
    ("train", "Train a model", ":material/model_training:"),
    ("runs", "All runs", ":material/table_view:"),
)
links = st.columns(len(LINKS))
shown = [link for link in LINKS if navigation.may_open(link[0])]  # the user's role's pages only
for column, (key, label, icon) in zip(links, shown, strict=False):
    column.page_link(navigation.PAGE_FILES[key], label=label, icon=icon)
