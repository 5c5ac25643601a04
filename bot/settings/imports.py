"""Settings for `siyu import`: which header of the brand's export holds which field.
Part of the configuration file (see bot/settings/model.py), as `[import.members.columns]` and
`[import.orders.columns]`: tables of `field = "header"`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

from bot.imports.fields import describe_fields, unknown_fields


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_columns(kind: str, columns: dict[str, str]) -> dict[str, str]:
    unknown = unknown_fields(kind, columns)
    if unknown:
        raise ValueError(f"unknown field {', '.join(map(repr, unknown))} (fields: {describe_fields(kind)})")
    blank = [field for field, header in columns.items() if not header.strip()]
    if blank:
        raise ValueError(f"blank header for {', '.join(blank)}")
    return columns


class MemberImportSettings(_Section):
    columns: dict[str, str] = {}  # our field → the file's header

    @field_validator("columns")
    @classmethod
    def _known(cls, columns: dict[str, str]) -> dict[str, str]:
        return _check_columns("members", columns)


class OrderImportSettings(_Section):
    columns: dict[str, str] = {}

    @field_validator("columns")
    @classmethod
    def _known(cls, columns: dict[str, str]) -> dict[str, str]:
        return _check_columns("orders", columns)


class ImportSettings(_Section):
    members: MemberImportSettings = MemberImportSettings()
    orders: OrderImportSettings = OrderImportSettings()
