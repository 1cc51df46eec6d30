"""The code location: `dagster dev -w workspace.yaml` and `factory` load this module."""

from factory_dagster.factory import build_definitions

defs = build_definitions()
