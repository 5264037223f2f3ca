"""Runs page (under construction)."""

import streamlit as st

st.title("Runs")
