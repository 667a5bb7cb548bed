"""Atomic writes: the umask decides permissions (not tempfile's 0600/0700), data is synced
before the rename, and a failed write leaves nothing behind."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager

import pytest

from data_builders import atomic
from data_builders.atomic import atomic_dir, atomic_path, torch_save, write_json, write_text
from data_builders.build import build_graph
from data_builders.store import save_graph


@contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    "mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]
)
def test_modes_follow_the_umask(tmp_path, mask, file_mode, dir_mode):
    with _umask(mask):
        write_json(tmp_path / "a.json", {"x": 1})
        write_text(tmp_path / "b.txt", "hi\n")
        torch_save({"w": 1}, tmp_path / "c.pt")
        with atomic_dir(tmp_path / "d") as d:
            (d / "inner.txt").write_text("x")
            (d / "sub").mkdir()
        plain = tmp_path / "plain.txt"  # what open() gives, for comparison
        plain.write_text("x")
    assert _mode(plain) == file_mode
    for f in ("a.json", "b.txt", "c.pt", "d/inner.txt"):
        assert _mode(tmp_path / f) == file_mode, f
    assert _mode(tmp_path / "d") == dir_mode and _mode(tmp_path / "d" / "sub") == dir_mode


def test_graph_directory_follows_the_umask(tmp_path, small_log):
    data, ids, report = build_graph(small_log)
    with _umask(0o022):
        out = save_graph(tmp_path / "g", data, ids, report, items=small_log.items)
    assert _mode(out) == 0o755
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"graph.pt", "meta.json", "report.json", "items.parquet"}
    assert {_mode(p) for p in files} == {0o644}


def test_fsync_before_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    target = tmp_path / "m.json"
    write_json(target, {"done": True})
    (_, synced), (_, src, dst), (_, parent) = events
    assert synced == src and dst == str(target)  # the temporary file, synced, then renamed
    assert parent == str(tmp_path)  # and the rename made durable


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "dir") as d:
            (d / "x").write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
