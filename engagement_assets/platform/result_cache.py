"""Model results kept in platform storage, so nothing is ever paid for twice (the clip analyses, the
conversation categories).

A result is keyed by what determines the answer (e.g. the clip's sha256, the expected sentence, the model
and the prompt version: `cache_key`). Results are appended as small Parquet segments under the task's prefix
every few results (a checkpoint), so a run that is killed keeps everything it paid for and the next run
resumes where it stopped. Only valid answers are cached: failures are asked again by the next run.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from engagement_assets.storage.parquet import read_parquet, write_parquet
from engagement_assets.storage.store import Store


def cache_key(sha256: str, expected_text: str | None, model: str, prompt_version: str) -> str:
    return hashlib.sha256(
        json.dumps([sha256, expected_text or "", model, prompt_version]).encode()
    ).hexdigest()


# Columns of every cache beside the values a model returned.
BOOKKEEPING = ("key", "model", "prompt_version", "input_tokens", "output_tokens")


def cache_schema(values: list[pa.Field] | pa.Schema) -> pa.Schema:
    """A cache's columns: the key, the values a model returned, and what they cost."""
    return pa.schema(
        [
            ("key", pa.string()),
            *values,
            ("model", pa.string()),
            ("prompt_version", pa.string()),
            ("input_tokens", pa.int64()),
            ("output_tokens", pa.int64()),
        ]
    )


class ResultCache:
    """One model task's paid-for results under `prefix`, with `schema` (`cache_schema` of its values)."""

    def __init__(self, store: Store, prefix: str, schema: pa.Schema, checkpoint_every: int = 25):
        self.store = store
        self.checkpoint_every = checkpoint_every
        self.prefix, self.schema = prefix, schema
        self.value_fields = [name for name in schema.names if name not in BOOKKEEPING]
        self._pending: list[dict] = []
        self._run = uuid.uuid4().hex[:12]
        self._segments = 0
        self.checkpoints = 0

    def lookup(self, keys: set[str]) -> dict[str, dict]:
        """Cached results for `keys` (the latest copy of each)."""
        segments = [f.key for f in self.store.list_files(self.prefix) if f.key.endswith(".parquet")]
        if not keys or not segments:
            return {}
        table = read_parquet(
            self.store, segments, schema=self.schema, filter=pc.field("key").isin(list(keys))
        )
        return {row["key"]: row for row in table.to_pylist()}

    def add(
        self, key: str, metrics: dict, model: str, prompt_version: str, input_tokens: int, output_tokens: int
    ) -> None:
        record = {"key": key, **{name: metrics[name] for name in self.value_fields}}
        record.update(
            model=model, prompt_version=prompt_version, input_tokens=input_tokens, output_tokens=output_tokens
        )
        self._pending.append(record)
        if len(self._pending) >= self.checkpoint_every:
            self.flush()

    def add_outcome(self, outcome, model: str, prompt_version: str) -> None:
        """Keep a model outcome's values (a `ModelOutcome` with metrics) with its token counts."""
        self.add(
            outcome.key, outcome.metrics, model, prompt_version, outcome.input_tokens, outcome.output_tokens
        )

    def flush(self) -> None:
        """Write what is pending as one segment (a checkpoint)."""
        if not self._pending:
            return
        table = pa.Table.from_pylist(self._pending, schema=self.schema)
        name = f"{self.prefix}segment-{self._run}-{self._segments:05d}.parquet"
        with tempfile.TemporaryDirectory(prefix="result-cache-") as scratch:
            self.store.put_file(write_parquet(table, Path(scratch) / "segment.parquet"), name)
        self._segments += 1
        self.checkpoints += 1
        self._pending = []
