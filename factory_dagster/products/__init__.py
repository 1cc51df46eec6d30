"""Builders that turn spec entries into Dagster assets."""
