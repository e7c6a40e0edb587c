"""Reading and writing files that learner code may have replaced with links or FIFOs."""

from __future__ import annotations

import os

from harness.safe_io import copy_regular, read_regular, write_replacing


def test_regular_file_is_read(tmp_path):
    (tmp_path / "a").write_bytes(b"data")
    assert read_regular(tmp_path / "a", 10) == b"data"


def test_link_is_not_followed(tmp_path):
    (tmp_path / "secret").write_bytes(b"grader data")
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    assert read_regular(tmp_path / "link", 100) is None
    assert not copy_regular(tmp_path / "link", tmp_path / "copy", 100)
    assert not (tmp_path / "copy").exists()


def test_fifo_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    assert read_regular(tmp_path / "fifo", 100) is None


def test_oversized_file_is_refused(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 101)
    assert read_regular(tmp_path / "big", 100) is None
    assert read_regular(tmp_path / "missing", 100) is None


def test_write_replaces_link_and_fifo(tmp_path):
    (tmp_path / "target").write_bytes(b"keep")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    write_replacing(tmp_path / "link", b"new")
    assert (tmp_path / "target").read_bytes() == b"keep"
    assert not (tmp_path / "link").is_symlink()
    assert (tmp_path / "link").read_bytes() == b"new"
    os.mkfifo(tmp_path / "fifo")
    write_replacing(tmp_path / "fifo", b"new")
    assert (tmp_path / "fifo").read_bytes() == b"new"
