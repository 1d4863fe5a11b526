"""The registered learners in partition order, kept between sensor ticks.

Reading every key of a dynamic partition set costs ~3 s at a million learners, and the sensors need the
order on every tick that plans runs (a run covers a contiguous range of it). Keys are appended in storage
order, so each process keeps the order it has read and asks only for the keys added since. A key can also
be deleted from the UI: the sensors confirm the keys they act on (`confirmed`), and any doubt reads the
whole order again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

PAGE = 100_000


@dataclass(frozen=True)
class PartitionOrder:
    """A snapshot: the keys in order and as a set. Never changed once made, so ticks that run side by side
    in one process can share it."""

    keys: tuple[str, ...] = ()
    members: frozenset[str] = frozenset()
    cursor: str | None = None

    def extended(self, added: list[str], cursor: str | None) -> PartitionOrder:
        if not added:
            return PartitionOrder(self.keys, self.members, cursor)
        return PartitionOrder(self.keys + tuple(added), self.members | frozenset(added), cursor)


_orders: dict[tuple[str, str], PartitionOrder] = {}
_lock = threading.Lock()


def partition_order(instance: dg.DagsterInstance, partitions_def_name: str) -> PartitionOrder:
    """Every key of the dynamic partition set, in the order its ranges follow."""
    cache_key = (_identity(instance), partitions_def_name)
    with _lock:
        order = _orders.get(cache_key, PartitionOrder())
        added, cursor = _added_since(instance, partitions_def_name, order.cursor)
        if order.members.intersection(added):
            # A key deleted and added again has moved to the end: read the order afresh.
            order, (added, cursor) = PartitionOrder(), _added_since(instance, partitions_def_name, None)
        _orders[cache_key] = order = order.extended(added, cursor)
        return order


def confirmed(instance: dg.DagsterInstance, partitions_def_name: str, keys: Iterable[str]) -> bool:
    """Whether all these keys are still registered; if not, the order is read afresh on the next call."""
    keys = list(keys)
    if not keys or len(instance.get_existing_dynamic_partitions(partitions_def_name, keys)) == len(set(keys)):
        return True
    with _lock:
        _orders.pop((_identity(instance), partitions_def_name), None)
    return False


def _added_since(instance: dg.DagsterInstance, name: str, cursor: str | None) -> tuple[list[str], str | None]:
    added = []
    while True:
        page = instance.get_paginated_dynamic_partitions(name, limit=PAGE, ascending=True, cursor=cursor)
        added += page.results
        cursor = page.cursor
        if not page.has_more:
            return added, cursor


def _identity(instance: dg.DagsterInstance) -> str:
    """The same for every instance object over the same storage (the daemon may hand each tick a new one)."""
    try:
        return repr(instance.get_ref().event_storage_data)
    except dg.DagsterInvariantViolationError:  # an ephemeral instance has no ref
        return f"ephemeral-{id(instance)}"
