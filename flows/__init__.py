"""Prefect only: the flows, their deployments, schedules and limits, artifacts, and the serve and demo entry points."""
