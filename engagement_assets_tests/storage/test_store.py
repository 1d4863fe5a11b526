"""The Store contract on a local folder and on the local S3 server: same behaviour, atomic writes."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from engagement_assets.errors import NotARegularFile
from engagement_assets.storage.parquet import read_parquet, write_parquet
from engagement_assets.storage.s3 import is_transient
from engagement_assets.storage.store import STALE_STAGING_SECONDS, LocalStore, S3Store, open_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store(tmp_path / "root")
    bucket = request.getfixturevalue("bucket")
    return open_store(f"s3://{bucket}/some/prefix")


def local_file(tmp_path, content: bytes, name: str = "payload") -> object:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_open_store_understands_folders_and_s3_urls(tmp_path):
    assert isinstance(open_store(tmp_path), LocalStore)
    s3 = open_store("s3://bucket/a/b/")
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket", "a/b")
    with pytest.raises(ValueError, match="needs a bucket"):
        open_store("s3:///x")
    with pytest.raises(ValueError, match="local folder or an s3"):
        open_store("gs://bucket/x")


def test_write_list_read_delete(store, tmp_path):
    store.put_file(local_file(tmp_path, b"one"), "asset/a.parquet")
    store.put_bytes(b"two", "asset/b/part-00000.parquet", scratch=tmp_path)
    assert store.exists("asset/a.parquet") and not store.exists("asset/zzz.parquet")
    assert [(f.key, f.size) for f in store.list_files("asset/")] == [
        ("asset/a.parquet", 3),
        ("asset/b/part-00000.parquet", 3),
    ]
    assert store.read_bytes("asset/b/part-00000.parquet") == b"two"
    assert store.delete_prefix("asset/b/") == 1
    assert [f.key for f in store.list_files("asset/")] == ["asset/a.parquet"]
    store.delete("asset/a.parquet")
    store.delete("asset/a.parquet")  # deleting what is gone is fine
    assert store.list_files("asset/") == []


def test_a_listing_can_leave_out_files_written_before_a_time(store, tmp_path):
    store.put_bytes(b"one", "asset/a.parquet", scratch=tmp_path)
    (written,) = store.list_files("asset/")
    assert store.list_files("asset/", modified_since=written.modified) == [written]
    assert store.list_files("asset/", modified_since=written.modified + 1) == []


def test_only_regular_files_are_listed_found_or_read(tmp_path):
    store = LocalStore(tmp_path / "root")
    store.put_bytes(b"real", "landing/real.json", scratch=tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (store.path("landing") / "link.json").symlink_to(outside)
    os.mkfifo(store.path("landing") / "pipe.json")
    skipped: list[str] = []
    assert [f.key for f in store.list_files("landing/", skipped=skipped)] == ["landing/real.json"]
    assert sorted(skipped) == ["landing/link.json", "landing/pipe.json"]
    for key in ("landing/link.json", "landing/pipe.json"):
        assert not store.exists(key) and store.size(key) is None
        started = time.monotonic()
        with pytest.raises(NotARegularFile):
            store.read_bytes(key)
        assert time.monotonic() - started < 1  # a FIFO with no writer is not waited on
        assert not is_transient(NotARegularFile(key))
    assert store.read_bytes("landing/real.json") == b"real"


def test_replace_folder_leaves_exactly_the_new_files(store, tmp_path):
    store.replace_folder(
        "t/p",
        {
            "part-00000.parquet": local_file(tmp_path, b"a"),
            "part-00001.parquet": local_file(tmp_path, b"b", "b"),
        },
    )
    store.replace_folder("t/p", {"part-00000.parquet": local_file(tmp_path, b"new", "c")})
    assert [(f.key, f.size) for f in store.list_files("t/")] == [("t/p/part-00000.parquet", 3)]


def test_parquet_round_trip_through_arrow(store, tmp_path):
    table = pa.table({"user_id": ["u1", "u2"], "x": [1, 2]})
    store.put_file(write_parquet(table, tmp_path / "t.parquet"), "asset/u.parquet")
    assert read_parquet(store, ["asset/u.parquet"]).equals(table)


def test_a_failed_local_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "root")
    store.put_file(local_file(tmp_path, b"old"), "a.parquet")

    def copy_half_then_die(source, target):
        with open(target, "wb") as out:
            out.write(b"ne")
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copyfile", copy_half_then_die)
    with pytest.raises(OSError, match="disk full"):
        store.put_file(local_file(tmp_path, b"new"), "a.parquet")
    assert store.read_bytes("a.parquet") == b"old"
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["a.parquet"]


def test_a_failed_local_folder_swap_keeps_the_old_version(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "root")
    store.replace_folder("t/p", {"part-00000.parquet": local_file(tmp_path, b"old")})
    real_copy = shutil.copyfile
    calls = []

    def fail_on_second(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise OSError("killed")
        return real_copy(source, target)

    monkeypatch.setattr(shutil, "copyfile", fail_on_second)
    with pytest.raises(OSError):
        store.replace_folder(
            "t/p",
            {
                "part-00000.parquet": local_file(tmp_path, b"n1"),
                "part-00001.parquet": local_file(tmp_path, b"n2", "n2"),
            },
        )
    assert [(f.key, store.read_bytes(f.key)) for f in store.list_files("t/")] == [
        ("t/p/part-00000.parquet", b"old")
    ]
    assert sorted(p.name for p in (tmp_path / "root" / "t").iterdir()) == ["p"]


def test_a_folder_being_replaced_is_never_missing_for_a_reader(tmp_path):
    store = LocalStore(tmp_path / "root")
    store.replace_folder("t/p", {"part-00000.parquet": local_file(tmp_path, b"v0")})
    missing, done = [], threading.Event()

    def read_all_the_time():
        while not done.is_set():
            if not store.exists("t/p/part-00000.parquet"):
                missing.append(time.monotonic())

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        for version in range(200):
            store.replace_folder("t/p", {"part-00000.parquet": local_file(tmp_path, f"v{version}".encode())})
    finally:
        done.set()
        reader.join()
    assert missing == []  # one atomic exchange, no moment between two renames
    assert store.read_bytes("t/p/part-00000.parquet") == b"v199"


def test_staged_copies_left_by_a_killed_process_are_swept_by_the_next_swap(tmp_path):
    store = LocalStore(tmp_path / "root")
    staging = store.path(".staging")
    staging.mkdir(parents=True)
    old, recent = staging / "dead.staging", staging / "live.staging"
    for folder in (old, recent):
        folder.mkdir()
        (folder / "part-00000.parquet").write_bytes(b"x")
    long_ago = time.time() - 2 * STALE_STAGING_SECONDS
    os.utime(old, (long_ago, long_ago))
    store.replace_folder("t/p", {"part-00000.parquet": local_file(tmp_path, b"new")})
    assert sorted(path.name for path in staging.iterdir()) == ["live.staging"]
    assert [f.key for f in store.list_files("")] == ["t/p/part-00000.parquet"]  # never listed either way


def test_a_failed_s3_upload_leaves_no_object(bucket, tmp_path, monkeypatch):
    store = S3Store(bucket, "pre")
    big = local_file(tmp_path, b"x" * (9 << 20))  # above boto3's multipart threshold
    real_upload_part = store.client.upload_part

    def fail_second_part(**kwargs):
        if kwargs["PartNumber"] == 2:
            raise ConnectionError("connection reset")
        return real_upload_part(**kwargs)

    monkeypatch.setattr(store.client, "upload_part", fail_second_part)
    with pytest.raises(Exception, match="connection reset"):
        store.put_file(big, "a/b.parquet")
    assert store.list_files("") == []
    assert not store.client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_s3_store_honours_aws_endpoint_url(bucket, s3_endpoint):
    store = S3Store(bucket)
    assert store.client.meta.endpoint_url == s3_endpoint
    store.put_bytes(b"x", "k")
    filesystem, root = store.arrow()
    assert [info.path for info in filesystem.get_file_info(pafs.FileSelector(root))] == [f"{bucket}/k"]
