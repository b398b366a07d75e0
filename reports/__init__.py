"""The campaign's reports for people: HTML pages, their charts, and the machines drawn as diagrams."""
