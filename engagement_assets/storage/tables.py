"""Every stored table has exactly its asset's declared Arrow schema, empty ones included.

Each asset declares its columns once, as a `pyarrow.Schema` beside the logic that produces them; writers
conform what a stage returns to it, readers read with it, and the UI shows it. Conforming converts each
column to its declared type (a column with no values, an int column declared as float, a datetime at ms
precision), and refuses anything that would change data or the column set, naming the asset and column.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engagement_assets.storage.columns import meaning_of


class SchemaDrift(ValueError):
    """A table does not have its asset's declared columns, or a column's values do not fit its type."""


def conform(value: pd.DataFrame | pa.Table, schema: pa.Schema, asset: str) -> pa.Table:
    """`value` as a table with exactly `schema`; SchemaDrift names the asset and the column otherwise."""
    names = list(value.columns) if isinstance(value, pd.DataFrame) else value.column_names
    _check_columns(names, schema, asset)
    return pa.Table.from_arrays([_column(value, field, asset) for field in schema], schema=schema)


def check_schema(actual: pa.Schema, schema: pa.Schema, asset: str) -> None:
    """A file written by a stage itself (parts) must already have exactly the declared schema."""
    _check_columns(actual.names, schema, asset)
    for field in schema:
        found = actual.field(field.name).type
        if found != field.type:
            raise SchemaDrift(f"{asset}: column {field.name!r} is {found}, declared {field.type}")


def _check_columns(names: list[str], schema: pa.Schema, asset: str) -> None:
    missing = [name for name in schema.names if name not in names]
    extra = [name for name in names if name not in schema.names]
    if missing or extra or len(names) != len(set(names)):
        raise SchemaDrift(
            f"{asset}: columns differ from the declared schema: missing {missing}, unexpected {extra}"
            + (", some repeated" if len(names) != len(set(names)) else "")
        )


def _column(value, field: pa.Field, asset: str) -> pa.Array | pa.ChunkedArray:
    column = value[field.name] if isinstance(value, pd.DataFrame) else value.column(field.name)
    # A column with no values (an empty table, or all missing) has no type of its own worth keeping:
    # pandas calls it float64 or object, Arrow null.
    if column.null_count == len(column) if isinstance(column, pa.ChunkedArray) else column.isna().all():
        return pa.nulls(len(column), field.type)
    try:
        if isinstance(value, pd.DataFrame):
            converted = pa.array(column, type=field.type, from_pandas=True)
            source = pa.array(column, from_pandas=True)
        else:
            converted, source = column.cast(field.type, safe=True), column
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        raise SchemaDrift(f"{asset}: column {field.name!r} does not fit {field.type}: {err}") from None
    if pa.types.is_date(field.type) and pa.types.is_timestamp(source.type):
        _check_whole_days(source, converted, field, asset)
    return converted


def _check_whole_days(source, dates, field: pa.Field, asset: str) -> None:
    # Arrow's safe cast from a timestamp to a date drops the time of day without a word.
    if pc.all(pc.equal(pc.cast(dates, source.type), source)).as_py() not in (True, None):
        raise SchemaDrift(f"{asset}: column {field.name!r} holds times of day, declared {field.type}")


def schema_markdown(schema: pa.Schema) -> str:
    """The columns of a schema as a Markdown table, as docs/storage.md lists them."""
    rows = [f"| `{field.name}` | `{field.type}` | {meaning_of(field)} |" for field in schema]
    return "\n".join(["| column | Arrow type | meaning |", "|---|---|---|", *rows])
