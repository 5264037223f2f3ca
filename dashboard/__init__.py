"""PneumoNet dashboard: Streamlit pages (`views/`) over small modules that call `pneumonet_core`."""
