"""The campaign's domain core: machines, conditions, persistence and the sweep (no Prefect, no Jinja)."""
