"""Ingest: raw records of the input topics -> validated, de-duplicated events + dead letters."""
