"""Which column of the file holds each field: flags first, then the configuration,
then the field's own name and its usual headers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.imports.fields import FIELDS, describe_fields, unknown_fields


class MappingError(Exception):
    """The columns asked for do not fit the file (or name no field)."""


def _folded(header: str) -> str:
    return header.replace("\ufeff", "").strip().casefold()


def resolve_columns(
    kind: str, header: Sequence[str], configured: Mapping[str, str], flags: Mapping[str, str]
) -> dict[str, int]:
    """field → index of its column in `header`. A header named by a flag (or by the
    configuration, for a required field) must be in the file; otherwise a field is found
    under its own name or one of its usual headers, or is not imported."""
    if unknown := unknown_fields(kind, flags):
        raise MappingError(f"unknown field {', '.join(map(repr, unknown))} in --column (fields: {describe_fields(kind)})")
    if unknown := unknown_fields(kind, configured):  # the settings check this already
        raise MappingError(f"unknown field {', '.join(map(repr, unknown))} in [import.{kind}.columns]")
    position: dict[str, int] = {}
    for index, name in enumerate(header):
        position.setdefault(_folded(name), index)
    found: dict[str, int] = {}
    missing: list[str] = []
    for name, spec in FIELDS[kind].items():
        if name in flags or name in configured:
            wanted = flags[name] if name in flags else configured[name]
            origin = f"--column {name}=…" if name in flags else f"[import.{kind}.columns] {name}"
            if _folded(wanted) in position:
                found[name] = position[_folded(wanted)]
            elif spec.required or name in flags:
                missing.append(f"{name} (column {wanted!r}, from {origin})")
            continue
        for candidate in (name, *spec.headers):
            if _folded(candidate) in position:
                found[name] = position[_folded(candidate)]
                break
        else:
            if spec.required:
                looked = " / ".join(repr(h) for h in (name, *spec.headers))
                missing.append(f"{name} (looked for {looked}; map it with --column {name}=HEADER)")
    if missing:
        columns = ", ".join(repr(h) for h in header)
        raise MappingError(f"missing column for {'; '.join(missing)}. The file's columns: {columns}")
    return found
