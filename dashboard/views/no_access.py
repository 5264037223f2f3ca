"""No access: what a signed-in user with no role sees instead of every other page."""

import streamlit as st

from dashboard import auth, layout

st.title("PneumoNet")
st.subheader("No access")
visitor = auth.access()
account = f"`{visitor.account}`" if visitor.account else "an account without an e-mail address"
if visitor.unverified:
    st.warning(
        f"You are signed in as {account}, but your identity provider has not verified this "
        "e-mail address, so PneumoNet gives it no role.",
        icon=":material/block:",
    )
else:
    st.warning(
        f"You are signed in as {account}, which has no role in PneumoNet.",
        icon=":material/block:",
    )
st.markdown(
    "Ask the PneumoNet administrator to add your e-mail address to the clinician or ML team "
    "list, or sign out and sign in with another account."
)
layout.sign_out_button("no_access_sign_out")
