"""Notices to people: the typed context of each event, rendering in the recipient's language, and delivery channels."""
