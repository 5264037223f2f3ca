"""Sign in: the only page a visitor sees before signing in (no model, data or page names)."""

import streamlit as st

from dashboard import auth, layout, text

st.title("PneumoNet")
st.subheader("Sign in")
visitor = auth.access()
if visitor.problem:
    st.error(f"Sign-in is not available: {visitor.problem}.", icon=":material/error:")
    st.caption(
        "An administrator must correct the secrets file (`.streamlit/secrets.toml`); the "
        "README's section on sign-in and roles shows what it must hold."
    )
else:
    st.markdown("Sign in with your hospital account to use PneumoNet.")
    if st.button("Sign in", type="primary", icon=":material/login:", key="sign_in"):
        with layout.guard("start signing in"):
            auth.sign_in()
st.caption(text.intended_use())
