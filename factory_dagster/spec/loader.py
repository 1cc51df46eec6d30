"""Load product lines: every `*.yaml` in lines/<name>/, validated into a FactorySpec per line."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from factory_dagster.spec.across_lines import check_across_lines
from factory_dagster.spec.dbt_manifest import ManifestError, dbt_models, load_manifest, models_path
from factory_dagster.spec.debt import DebtSpec, check_exception_rules
from factory_dagster.spec.errors import SpecError, SpecErrors, known
from factory_dagster.spec.line import FactorySpec, LineSpec
from factory_dagster.spec.product import ProductKind
from factory_dagster.spec.pydantic_errors import explain
from factory_dagster.spec.references import check_time, check_unique_keys
from factory_dagster.spec.root import LINES_DIR, FactoryRoot, find_root
from factory_dagster.spec.time import JobSpec, PartitionsSpec, ScheduleSpec, SensorSpec
from factory_dagster.spec.yaml_source import YamlDocument, format_key_path, load_yaml

SINGLETONS = {"line": LineSpec, "debt": DebtSpec}  # sections holding one entry, not a mapping
TIME_SECTIONS = {"jobs": JobSpec, "sensors": SensorSpec, "schedules": ScheduleSpec}


def sections(kinds: Sequence[ProductKind]) -> dict[str, type]:
    """Every mapping section, in the order messages list them: partitions, the kinds', time's."""
    products = {kind.section: kind.spec_model for kind in kinds if kind.section and kind.spec_model}
    return {"partitions": PartitionsSpec, **products, **TIME_SECTIONS}


def _validation_errors(
    doc: YamlDocument, prefix: tuple[Any, ...], model: type, data: Any, exc: ValidationError
) -> list[SpecError]:
    errors = []
    for rel_path, reason in explain(exc, model, data):
        path = (*prefix, *rel_path)
        errors.append(SpecError(doc.path, format_key_path(path), reason, doc.line_of(path)))
    return errors


def _parse(
    root: FactoryRoot, line_name: str, docs: list[YamlDocument], kinds: Sequence[ProductKind]
) -> tuple[FactorySpec, list[SpecError]]:
    errors: list[SpecError] = []
    singles: dict[str, Any] = {}
    single_docs: dict[str, YamlDocument] = {}
    by_section = sections(kinds)
    all_sections = (*SINGLETONS, *by_section)
    entries: dict[str, dict[str, Any]] = {section: {} for section in by_section}
    documents: dict[tuple[str, str], YamlDocument] = {}

    for doc in docs:
        for section, body in doc.data.items():
            if section not in all_sections:
                errors.append(
                    SpecError(
                        doc.path,
                        str(section),
                        f"unknown section '{section}' (known: {', '.join(all_sections)})",
                        doc.line_of((section,)),
                    )
                )
                continue
            if section in SINGLETONS:
                if section in single_docs:
                    errors.append(
                        SpecError(
                            doc.path,
                            section,
                            f"duplicate key '{section}' (also defined in {single_docs[section].path.name})",
                            doc.line_of((section,)),
                        )
                    )
                    continue
                single_docs[section] = doc
                documents[(section, section)] = doc
                if section == "line" and isinstance(body, dict) and "name" in body:
                    errors.append(
                        SpecError(
                            doc.path,
                            "line.name",
                            f"a line is named by its folder (lines/{line_name}/): remove 'name'",
                            doc.line_of(("line", "name")),
                        )
                    )
                    body = {k: v for k, v in body.items() if k != "name"}
                try:
                    singles[section] = SINGLETONS[section].model_validate(body if body is not None else {})
                except ValidationError as exc:
                    errors.extend(_validation_errors(doc, (section,), SINGLETONS[section], body, exc))
                continue
            if body is None:
                continue
            if not isinstance(body, dict):
                errors.append(
                    SpecError(doc.path, section, "expected a mapping of names to entries", doc.line_of((section,)))
                )
                continue
            model = by_section[section]
            for name, entry in body.items():
                name = str(name)
                if (section, name) in documents:
                    first = documents[(section, name)]
                    errors.append(
                        SpecError(
                            doc.path,
                            f"{section}.{name}",
                            f"duplicate key '{name}' (also defined in {first.path.name}, "
                            f"line {first.line_of((section, name))})",
                            doc.line_of((section, name)),
                        )
                    )
                    continue
                documents[(section, name)] = doc
                try:
                    entries[section][name] = model.model_validate(entry)
                except ValidationError as exc:
                    errors.extend(_validation_errors(doc, (section, name), model, entry, exc))

    line: LineSpec | None = singles.get("line")
    if single_docs.get("line") is None:
        errors.insert(
            0,
            SpecError(root.line_dir(line_name), "line", "no spec file declares the 'line' section (description, ...)"),
        )
    products = {kind.section: entries[kind.section] for kind in kinds if kind.section}
    spec = FactorySpec(
        name=line_name,
        root=root,
        line=line or LineSpec(description="-"),
        kinds=tuple(kinds),
        debt=singles.get("debt") or DebtSpec(),
        documents=documents,
        products=products,
        **{section: entries[section] for section in ("partitions", *TIME_SECTIONS)},
    )
    if spec.dbt_project_dir is not None:
        try:
            landed = {  # what dbt reads as sources: their columns resolve its `select *`
                kind.key(spec, name): list(kind.columns(spec, name) or ())
                for kind in kinds
                if kind.role == "source"
                for name in kind.names(spec)
            }
            spec.dbt_models = dbt_models(load_manifest(spec.dbt_project_dir), models_path(line_name), landed)
        except ManifestError as exc:
            errors.append(SpecError(exc.path, "", exc.reason))
    elif line is not None and line.dbt.partitioned is not None:
        errors.append(
            spec.error(
                "line",
                "line",
                ("dbt", "partitioned"),
                f"the line has no dbt models ({root.dbt_models_dir(line_name)} not found)",
            )
        )
    return spec, errors


def load_line(
    line: str | Path,
    root: FactoryRoot | Path | str | None = None,
    *,
    kinds: Sequence[ProductKind],
    debt_rules: Collection[str] | None = None,
) -> FactorySpec:
    """Load and validate one product line; raises SpecError (one line per problem) if invalid.

    `line` is the line's name (found under the factory root), or its folder `<root>/lines/<name>`.
    `kinds`: the product kinds a line may declare (`factory_dagster.products.KINDS`); `debt_rules`:
    the debt rule ids its exceptions may name (None: not checked).
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
    spec, errors = _parse(root, name, docs, kinds)
    if not errors:
        errors = check_unique_keys(spec)
        errors += [e for kind in kinds for entry in kind.names(spec) for e in kind.check(spec, entry)]
        errors += check_time(spec)
        errors += check_exception_rules(spec, debt_rules) if debt_rules is not None else []
    raise_all(errors)
    return spec


def load_factory(
    root: FactoryRoot | Path | str | None = None,
    lines: Sequence[str] | None = None,
    *,
    kinds: Sequence[ProductKind],
    debt_rules: Collection[str] | None = None,
) -> list[FactorySpec]:
    """Every line the factory serves (or `lines`), validated, with names unique across lines."""
    root = root if isinstance(root, FactoryRoot) else find_root(root)
    specs = [load_line(name, root, kinds=kinds, debt_rules=debt_rules) for name in root.served_lines(lines)]
    raise_all(check_across_lines(specs))
    return specs


def raise_all(errors: list[SpecError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecErrors(errors)
