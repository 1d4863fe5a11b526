"""A declared column: its name, Arrow type and what it means (pyarrow only, so stage-1 workers stay small)."""

from __future__ import annotations

import pyarrow as pa


def column(name: str, arrow_type: pa.DataType, meaning: str) -> pa.Field:
    """A declared column with what it means (shown in the UI's column view and in docs/storage.md)."""
    return pa.field(name, arrow_type, metadata={"description": meaning} if meaning else None)


def meaning_of(field: pa.Field) -> str:
    return (field.metadata or {}).get(b"description", b"").decode()
