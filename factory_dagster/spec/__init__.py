"""The factory spec: YAML product lines validated into typed objects, with one-line errors."""

from factory_dagster.spec.errors import SpecError, SpecErrors
from factory_dagster.spec.line import FactorySpec
from factory_dagster.spec.loader import default_spec_dir, load_line

__all__ = ["FactorySpec", "SpecError", "SpecErrors", "default_spec_dir", "load_line"]
