"""Load a product line: every `*.yaml` in a spec folder, validated into a FactorySpec."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from factory_dagster.spec.dbt_manifest import dbt_models, load_manifest, manifest_path
from factory_dagster.spec.debt import DebtSpec
from factory_dagster.spec.errors import SpecError, SpecErrors
from factory_dagster.spec.line import FactorySpec
from factory_dagster.spec.models import SECTIONS, LineSpec
from factory_dagster.spec.pydantic_errors import explain
from factory_dagster.spec.references import check_references
from factory_dagster.spec.yaml_source import YamlDocument, format_key_path, load_yaml

DEFAULT_LINE = Path(__file__).resolve().parent.parent / "lines" / "flights" / "specs"
SINGLETONS = {"line": LineSpec, "debt": DebtSpec}  # sections holding one entry, not a mapping
ALL_SECTIONS = (*SINGLETONS, *SECTIONS)


def default_spec_dir() -> Path:
    """`FACTORY_SPECS` if set, else the shipped flights product line."""
    configured = os.environ.get("FACTORY_SPECS")
    return Path(configured).expanduser().resolve() if configured else DEFAULT_LINE


def _validation_errors(doc: YamlDocument, prefix: tuple[Any, ...], model: type, data: Any,
                       exc: ValidationError) -> list[SpecError]:
    errors = []
    for rel_path, reason in explain(exc, model, data):
        path = (*prefix, *rel_path)
        errors.append(SpecError(doc.path, format_key_path(path), reason, doc.line_of(path)))
    return errors


def _parse(spec_dir: Path, docs: list[YamlDocument],
           prepare_dbt: Callable[[Path], None] | None) -> tuple[FactorySpec, list[SpecError]]:
    errors: list[SpecError] = []
    singles: dict[str, Any] = {}
    single_docs: dict[str, YamlDocument] = {}
    entries: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    documents: dict[tuple[str, str], YamlDocument] = {}

    for doc in docs:
        for section, body in doc.data.items():
            if section not in ALL_SECTIONS:
                errors.append(SpecError(doc.path, str(section),
                                        f"unknown section '{section}' (known: {', '.join(ALL_SECTIONS)})",
                                        doc.line_of((section,))))
                continue
            if section in SINGLETONS:
                if section in single_docs:
                    errors.append(SpecError(doc.path, section,
                                            f"duplicate key '{section}' (also defined in {single_docs[section].path.name})",
                                            doc.line_of((section,))))
                    continue
                single_docs[section] = doc
                documents[(section, section)] = doc
                try:
                    singles[section] = SINGLETONS[section].model_validate(body if body is not None else {})
                except ValidationError as exc:
                    errors.extend(_validation_errors(doc, (section,), SINGLETONS[section], body, exc))
                continue
            if body is None:
                continue
            if not isinstance(body, dict):
                errors.append(SpecError(doc.path, section, "expected a mapping of names to entries",
                                        doc.line_of((section,))))
                continue
            model = SECTIONS[section]
            for name, entry in body.items():
                name = str(name)
                if (section, name) in documents:
                    first = documents[(section, name)]
                    errors.append(SpecError(
                        doc.path, f"{section}.{name}",
                        f"duplicate key '{name}' (also defined in {first.path.name}, "
                        f"line {first.line_of((section, name))})",
                        doc.line_of((section, name))))
                    continue
                documents[(section, name)] = doc
                try:
                    entries[section][name] = model.model_validate(entry)
                except ValidationError as exc:
                    errors.extend(_validation_errors(doc, (section, name), model, entry, exc))

    line: LineSpec | None = singles.get("line")
    line_doc = single_docs.get("line")
    if line_doc is None:
        errors.insert(0, SpecError(spec_dir, "line",
                                   "no spec file declares the 'line' section (name, description)"))
    spec = FactorySpec(spec_dir=spec_dir, line=line or LineSpec(name="invalid", description="-"),
                       debt=singles.get("debt") or DebtSpec(), documents=documents, **entries)
    if line is not None and line.dbt is not None and line_doc is not None:
        spec.dbt_project_dir = spec.resolve_path(line.dbt.project_dir)
        try:
            if prepare_dbt is not None and (spec.dbt_project_dir / "dbt_project.yml").exists():
                prepare_dbt(spec.dbt_project_dir)
            spec.dbt_models = dbt_models(load_manifest(spec.dbt_project_dir))
        except FileNotFoundError:
            where = manifest_path(spec.dbt_project_dir)
            reason = (f"dbt project not found at {spec.dbt_project_dir}"
                      if not (spec.dbt_project_dir / "dbt_project.yml").exists()
                      else f"dbt manifest {where} is missing: run 'factory prepare' (dbt parse)")
            errors.append(SpecError(line_doc.path, "line.dbt.project_dir", reason,
                                    line_doc.line_of(("line", "dbt", "project_dir"))))
    return spec, errors


def load_line(spec_dir: Path | str | None = None,
              prepare_dbt: Callable[[Path], None] | None = None) -> FactorySpec:
    """Load and validate a product line; raises SpecError (one line per problem) if invalid.

    `prepare_dbt(project_dir)` runs before the dbt manifest is read (e.g. `dbt parse` under
    `dagster dev`).
    """
    spec_dir = Path(spec_dir).resolve() if spec_dir is not None else default_spec_dir()
    if not spec_dir.is_dir():
        raise SpecError(spec_dir, "", "spec folder not found")
    files = sorted(p for p in spec_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise SpecError(spec_dir, "", "no *.yaml spec files in this folder")
    docs = [load_yaml(path) for path in files]
    spec, errors = _parse(spec_dir, docs, prepare_dbt)
    if not errors:
        errors = check_references(spec)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecErrors(errors)
    return spec
