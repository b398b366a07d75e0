"""Reading the organisation's files — encodings, CSV, spreadsheets — into the rows the core imports."""

from readers.csvfile import read_table

__all__ = ["read_table"]
