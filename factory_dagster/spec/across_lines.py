"""Checks across the lines of one factory: every asset key and every job, sensor and schedule
name is the factory's, not a line's.

Asset keys are one namespace, as model names are in a dbt project: a source, dbt model, feature
set, model or predictions name used by two lines is refused, naming both places.
"""

from __future__ import annotations

from factory_dagster.spec.errors import SpecError, display_path
from factory_dagster.spec.line import FactorySpec

DEFINITION_SECTIONS = ("jobs", "sensors", "schedules")  # their names are Dagster definition names


def _where(spec: FactorySpec, section: str, name: str) -> str:
    doc = spec.documents.get((section, name))
    if doc is None:  # a dbt model
        return f"line '{spec.name}' ({display_path(spec.root.dbt_models_dir(spec.name))})"
    return f"line '{spec.name}' ({display_path(doc.path)}, line {doc.line_of((section, name))})"


def _error(spec: FactorySpec, section: str, name: str, reason: str) -> SpecError:
    if (section, name) in spec.documents:
        return spec.error(section, name, (), reason)
    return SpecError(spec.root.dbt_models_dir(spec.name), f"dbt model {name}", reason)


def check_across_lines(specs: list[FactorySpec]) -> list[SpecError]:
    errors: list[SpecError] = []
    assets: dict[str, tuple[FactorySpec, str, str]] = {}
    definitions: dict[str, tuple[FactorySpec, str, str]] = {}
    for spec in specs:
        entries = [
            (kind.section or "dbt_models", name, kind.key(spec, name))
            for kind in spec.kinds
            for name in kind.names(spec)
        ]
        for section, name, key in entries:
            if key in assets and assets[key][0] is not spec:
                other, other_section, other_name = assets[key]
                errors.append(
                    _error(
                        spec,
                        section,
                        name,
                        f"asset '{key}' is already declared by {_where(other, other_section, other_name)}: "
                        "asset names are unique across the factory's lines",
                    )
                )
            assets.setdefault(key, (spec, section, name))
        for section in DEFINITION_SECTIONS:
            for name in getattr(spec, section):
                if name in definitions and definitions[name][0] is not spec:
                    other, other_section, _ = definitions[name]
                    errors.append(
                        spec.error(
                            section,
                            name,
                            (),
                            f"'{name}' is already the name of a {other_section.rstrip('s')} of "
                            f"{_where(other, other_section, name)}: job, sensor and schedule "
                            "names are unique across the factory's lines",
                        )
                    )
                definitions.setdefault(name, (spec, section, name))
    return errors
