"""A file source's content hashes are remembered by file identity: a run reads only the files
that changed, and a file rewritten in place is always hashed again."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from lagoa.sources.file_hashes import RACY_NS, FileHashes
from lagoa.sources.files import content_hash, discover
from tests.conftest import ORDERS_CONFIG, MakeProject, count


class Counting:
    def __init__(self) -> None:
        self.read: list[Path] = []

    def __call__(self, path: Path) -> str:
        self.read.append(path)
        return content_hash(path)


def hashes(store: Path, compute: Counting, racy_ns: int = 0) -> FileHashes:
    return FileHashes(store, compute, racy_ns=racy_ns)


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_is(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n2\n")
    store, compute = tmp_path / "hashes.json", Counting()
    first = discover("s", "*.csv", tmp_path, hashes(store, compute))
    assert len(compute.read) == 2

    again = discover("s", "*.csv", tmp_path, hashes(store, compute))
    assert len(compute.read) == 2, "nothing changed: no file is read"
    assert [f.batch_id for f in again] == [f.batch_id for f in first]

    (tmp_path / "b.csv").write_text("x\n3\n")
    third = discover("s", "*.csv", tmp_path, hashes(store, compute))
    assert compute.read[2:] == [tmp_path / "b.csv"]
    assert third[0].batch_id == first[0].batch_id
    assert third[1].batch_id == content_hash(tmp_path / "b.csv") != first[1].batch_id


def test_a_file_rewritten_in_place_with_its_size_and_modification_time_restored_is_read_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    before = path.stat()
    store, compute = tmp_path / "hashes.json", Counting()
    (first,) = discover("s", "*.csv", tmp_path, hashes(store, compute))
    with path.open("r+") as stream:  # same inode, same size
        stream.write("x\n2\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns

    (second,) = discover("s", "*.csv", tmp_path, hashes(store, compute))
    assert len(compute.read) == 2
    assert second.batch_id == content_hash(path) != first.batch_id


def test_a_file_modified_just_before_its_hashing_is_not_remembered(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    store, compute = tmp_path / "hashes.json", Counting()
    discover("s", "*.csv", tmp_path, FileHashes(store, compute))  # the default window: 2 s
    discover("s", "*.csv", tmp_path, FileHashes(store, compute))
    assert len(compute.read) == 2


def test_removed_files_drop_out_and_an_unreadable_store_means_hashing_again(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n2\n")
    store, compute = tmp_path / "hashes.json", Counting()
    discover("s", "*.csv", tmp_path, hashes(store, compute))
    (tmp_path / "b.csv").unlink()
    discover("s", "*.csv", tmp_path, hashes(store, compute))
    assert list(json.loads(store.read_text())) == [str((tmp_path / "a.csv").resolve())]

    store.write_text("{not json")
    discover("s", "*.csv", tmp_path, hashes(store, compute))
    assert len(compute.read) == 3


def test_an_ingest_after_an_in_place_rewrite_takes_the_new_rows(make_project: MakeProject) -> None:
    header = "order_id,amount,ordered_at,updated_at\n"
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": header + "1,10.5,2024-06-01,2024-06-01\n"})
    path = project.root / "data/orders_1.csv"
    before = path.stat()
    # Past the window in which a just-modified file is not remembered: this run remembers it.
    time.sleep(max(0.0, (before.st_ctime_ns + RACY_NS) / 1e9 - time.time() + 0.1))
    project.ingest()
    store = json.loads((project.root / ".lagoa" / "hashes" / "orders.json").read_text())
    assert list(store) == [str(path.resolve())]
    with path.open("r+") as stream:
        stream.write(header + "2,20.5,2024-06-01,2024-06-01\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    project.ingest()
    assert count(project, "select count(*) from bronze.orders") == 2
    assert count(project, "select count(*) from silver.orders where order_id = 2") == 1
