"""Load product lines: every `*.yaml` in lines/<name>/, validated into a FactorySpec per line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from factory_dagster.spec.across_lines import check_across_lines
from factory_dagster.spec.dbt_manifest import ManifestError, dbt_models, load_manifest, models_path
from factory_dagster.spec.debt import DebtSpec
from factory_dagster.spec.errors import SpecError, SpecErrors, known
from factory_dagster.spec.line import FactorySpec
from factory_dagster.spec.models import SECTIONS, LineSpec
from factory_dagster.spec.pydantic_errors import explain
from factory_dagster.spec.references import check_references
from factory_dagster.spec.root import LINES_DIR, FactoryRoot, find_root
from factory_dagster.spec.yaml_source import YamlDocument, format_key_path, load_yaml

SINGLETONS = {"line": LineSpec, "debt": DebtSpec}  # sections holding one entry, not a mapping
ALL_SECTIONS = (*SINGLETONS, *SECTIONS)


def _validation_errors(doc: YamlDocument, prefix: tuple[Any, ...], model: type, data: Any,
                       exc: ValidationError) -> list[SpecError]:
    errors = []
    for rel_path, reason in explain(exc, model, data):
        path = (*prefix, *rel_path)
        errors.append(SpecError(doc.path, format_key_path(path), reason, doc.line_of(path)))
    return errors


def _parse(root: FactoryRoot, line_name: str, docs: list[YamlDocument]) -> tuple[FactorySpec, list[SpecError]]:
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
    if single_docs.get("line") is None:
        errors.insert(0, SpecError(root.line_dir(line_name), "line",
                                   "no spec file declares the 'line' section (description, ...)"))
    spec = FactorySpec(name=line_name, root=root, line=line or LineSpec(description="-"),
                       debt=singles.get("debt") or DebtSpec(), documents=documents, **entries)
    if spec.dbt_project_dir is not None:
        try:
            spec.dbt_models = dbt_models(load_manifest(spec.dbt_project_dir), models_path(line_name))
        except ManifestError as exc:
            errors.append(SpecError(exc.path, "", exc.reason))
    elif line is not None and line.dbt.partitioned is not None:
        errors.append(spec.error("line", "line", ("dbt", "partitioned"),
                                 f"the line has no dbt models ({root.dbt_models_dir(line_name)} not found)"))
    return spec, errors


def load_line(line: str | Path, root: FactoryRoot | Path | str | None = None) -> FactorySpec:
    """Load and validate one product line; raises SpecError (one line per problem) if invalid.

    `line` is the line's name (found under the factory root), or its folder `<root>/lines/<name>`.
    """
    if isinstance(line, Path) or "/" in line or line in (".", ".."):
        folder = Path(line).expanduser().resolve()
        if not folder.is_dir():
            raise SpecError(folder, "", "line folder not found")
        if folder.parent.name != LINES_DIR:
            raise SpecError(folder, "", f"a line's folder lives at <factory root>/{LINES_DIR}/<name>/")
        if not (isinstance(root, FactoryRoot) and root.path == folder.parent.parent):
            root = find_root(folder.parent.parent)
        name = folder.name
    else:
        root = root if isinstance(root, FactoryRoot) else find_root(root)
        name = line
    spec_dir = root.line_dir(name)
    if not spec_dir.is_dir():
        raise SpecError(spec_dir, "", f"line '{name}' not found (lines: {known(root.available_lines())})")
    files = sorted(p for p in spec_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise SpecError(spec_dir, "", "no *.yaml spec files in this folder")
    docs = [load_yaml(path) for path in files]
    spec, errors = _parse(root, name, docs)
    if not errors:
        errors = check_references(spec)
    raise_all(errors)
    return spec


def load_factory(root: FactoryRoot | Path | str | None = None, lines: Sequence[str] | None = None
                 ) -> list[FactorySpec]:
    """Every line the factory serves (or `lines`), validated, with names unique across lines."""
    root = root if isinstance(root, FactoryRoot) else find_root(root)
    specs = [load_line(name, root) for name in root.served_lines(lines)]
    raise_all(check_across_lines(specs))
    return specs


def raise_all(errors: list[SpecError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecErrors(errors)
