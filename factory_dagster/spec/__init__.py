"""The factory spec: YAML product lines validated into typed objects, with one-line errors.

The product kinds a line may declare live in `factory_dagster.products`; load lines with
`factory_dagster.products.load_line` / `load_factory`, which hand the kinds to the loader here.
"""

from factory_dagster.spec.errors import SpecError, SpecErrors
from factory_dagster.spec.line import FactorySpec
from factory_dagster.spec.root import FactoryRoot, find_root

__all__ = ["FactoryRoot", "FactorySpec", "SpecError", "SpecErrors", "find_root"]
