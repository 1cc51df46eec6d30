"""The factory spec: YAML product lines validated into typed objects, with one-line errors."""

from factory_dagster.spec.errors import SpecError, SpecErrors
from factory_dagster.spec.line import FactorySpec
from factory_dagster.spec.loader import load_factory, load_line
from factory_dagster.spec.root import FactoryRoot, find_root

__all__ = ["FactoryRoot", "FactorySpec", "SpecError", "SpecErrors", "find_root", "load_factory", "load_line"]
