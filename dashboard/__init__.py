"""PneumoNet dashboard: Streamlit pages over `pneumonet_core`, reached through `services`."""
