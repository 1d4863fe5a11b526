"""The partition order the sensors keep between ticks: only new keys read, deletions never trusted."""

from __future__ import annotations

import dagster as dg

from engagement_assets.automation import partition_order as kept
from engagement_assets.automation.partition_order import confirmed, partition_order

NAME = "learners_for_order"


def test_the_kept_order_reads_only_keys_added_since_and_matches_the_instance(instance, monkeypatch):
    instance.add_dynamic_partitions(NAME, ["c", "a", "b"])
    assert partition_order(instance, NAME).keys == ("c", "a", "b")
    instance.add_dynamic_partitions(NAME, ["e", "d"])
    pages = []
    original = instance.get_paginated_dynamic_partitions

    def counted(*args, **kwargs):
        page = original(*args, **kwargs)
        pages.append(page.results)
        return page

    monkeypatch.setattr(instance, "get_paginated_dynamic_partitions", counted)
    order = partition_order(instance, NAME)
    assert order.keys == tuple(instance.get_dynamic_partitions(NAME)) and order.members == set("abcde")
    assert pages == [["e", "d"]]  # the three keys already kept were not read again


def test_keys_are_read_in_pages(instance, monkeypatch):
    monkeypatch.setattr(kept, "PAGE", 2)
    instance.add_dynamic_partitions(NAME, [f"k{n}" for n in range(5)])
    assert partition_order(instance, NAME).keys == tuple(f"k{n}" for n in range(5))


def test_a_key_deleted_and_added_again_moves_to_the_end(instance):
    instance.add_dynamic_partitions(NAME, ["a", "b", "c"])
    partition_order(instance, NAME)
    instance.delete_dynamic_partition(NAME, "a")
    instance.add_dynamic_partitions(NAME, ["a"])
    assert (
        partition_order(instance, NAME).keys
        == ("b", "c", "a")
        == tuple(instance.get_dynamic_partitions(NAME))
    )


def test_a_deleted_key_is_found_out_when_confirmed_and_the_order_read_afresh(instance):
    instance.add_dynamic_partitions(NAME, ["a", "b", "c"])
    partition_order(instance, NAME)
    instance.delete_dynamic_partition(NAME, "b")
    assert confirmed(instance, NAME, ["a", "c"])
    assert not confirmed(instance, NAME, ["a", "b"])
    assert partition_order(instance, NAME).keys == ("a", "c")


def test_each_instance_keeps_its_own_order(tmp_path):
    orders = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / name)) as instance:
            instance.add_dynamic_partitions(NAME, [name])
            orders.append(partition_order(instance, NAME).keys)
    assert orders == [("one",), ("two",)]
