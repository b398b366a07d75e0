"""The edge: the command line, Prefect flows, notice rendering and delivery, reports (over states/)."""
