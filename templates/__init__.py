"""Jinja2 templates: notices (templates/notices) and reports (templates/reports); a package so installs carry them."""
