"""Batch input for grade-batch: folders, zips in the Canvas and Moodle layouts, manifests, and hostile zips."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import time
import uuid
import zipfile
from pathlib import Path

import nbformat
import pytest

from harness.batch.sources import (
    BatchInputError,
    Collection,
    ExtractionLimits,
    Rejection,
    collect_submissions,
    safe_learner_id,
)

NOT_NOTEBOOK = "not a .ipynb notebook; ask the learner to resubmit the .ipynb"


def notebook_bytes(text: str) -> bytes:
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_markdown_cell(text))
    return nbformat.writes(notebook).encode("utf-8")


def write_notebook(path: Path, text: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = notebook_bytes(text)
    path.write_bytes(data)
    return data


def build_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def unix_entry(name: str, file_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (file_type | 0o644) << 16
    return info


def files_outside(root: Path, work_dir: Path) -> dict[str, bytes]:
    """Return every file under root that is not under work_dir, with its content."""
    found = {}
    for path in root.rglob("*"):
        if work_dir in path.parents or path == work_dir or path.is_dir():
            continue
        found[path.relative_to(root).as_posix()] = path.read_bytes() if not path.is_symlink() else b"<link>"
    return found


def rejection_for(collection: Collection, entry: str) -> Rejection:
    matches = [rejection for rejection in collection.rejected if rejection.entry == entry]
    assert len(matches) == 1, f"expected one rejection for {entry!r}, got {collection.rejected}"
    return matches[0]


def by_learner(collection: Collection) -> dict:
    return {submission.learner_id: submission for submission in collection.submissions}


def assert_inside(path: Path, folder: Path) -> None:
    assert path.resolve().is_relative_to(folder.resolve()), f"{path} is not inside {folder}"


# ---------------------------------------------------------------- Canvas


def test_canvas_zip_learner_ids_and_late(tmp_path):
    jane = notebook_bytes("jane")
    bob = notebook_bytes("bob")
    ann_final = notebook_bytes("ann, final")
    source = build_zip(tmp_path / "submissions.zip", [
        ("doejane_1001_5001_nslkdd_assessment.ipynb", jane),
        ("smithbob_LATE_1002_5002_nslkdd_assessment.ipynb", bob),
        ("leeann_1003_5003_nslkdd_assessment.ipynb", notebook_bytes("ann, first")),
        ("leeann_1003_5003_nslkdd_assessment-1.ipynb", notebook_bytes("ann, second")),
        ("leeann_1003_5003_nslkdd_assessment-2.ipynb", ann_final),
        ("kimmin_1004_5004_nslkdd_assessment.html", b"<html></html>"),
    ])
    work_dir = tmp_path / "work"
    before = files_outside(tmp_path, work_dir)

    collection = collect_submissions(source, work_dir)

    assert collection.layout == "canvas"
    learners = by_learner(collection)
    assert sorted(learners) == ["1001", "1002", "1003"]
    assert learners["1001"].notebook.read_bytes() == jane
    assert learners["1001"].sha256 == hashlib.sha256(jane).hexdigest()
    assert learners["1001"].original_name == "doejane_1001_5001_nslkdd_assessment.ipynb"
    assert learners["1001"].late is False
    assert learners["1002"].late is True
    assert learners["1002"].notebook.read_bytes() == bob
    assert learners["1003"].original_name == "leeann_1003_5003_nslkdd_assessment-2.ipynb"
    assert learners["1003"].notebook.read_bytes() == ann_final
    for submission in collection.submissions:
        assert_inside(submission.notebook, work_dir)
        assert submission.notebook.is_file()
    assert collection.extracted_to is not None
    assert_inside(collection.extracted_to, work_dir)

    assert len(collection.rejected) == 3
    first = rejection_for(collection, "leeann_1003_5003_nslkdd_assessment.ipynb")
    assert first.code == "superseded"
    assert first.learner_id == "1003"
    assert "earlier notebook of learner 1003" in first.reason
    assert "'leeann_1003_5003_nslkdd_assessment-2.ipynb', is graded instead" in first.reason
    assert rejection_for(collection, "leeann_1003_5003_nslkdd_assessment-1.ipynb").code == "superseded"
    html = rejection_for(collection, "kimmin_1004_5004_nslkdd_assessment.html")
    assert html.code == "not_notebook"
    assert html.learner_id == "1004"
    assert NOT_NOTEBOOK in html.reason
    assert "'kimmin_1004_5004_nslkdd_assessment.html'" in html.reason
    assert files_outside(tmp_path, work_dir) == before


def test_canvas_two_different_notebooks_rejected(tmp_path):
    source = build_zip(tmp_path / "submissions.zip", [
        ("doejane_1001_5001_assessment.ipynb", notebook_bytes("a")),
        ("doejane_1001_5001_scratch.ipynb", notebook_bytes("b")),
        ("smithbob_1002_5002_assessment.ipynb", notebook_bytes("c")),
    ])

    collection = collect_submissions(source, tmp_path / "work")

    assert [submission.learner_id for submission in collection.submissions] == ["1002"]
    assert len(collection.rejected) == 2
    for name in ("doejane_1001_5001_assessment.ipynb", "doejane_1001_5001_scratch.ipynb"):
        rejection = rejection_for(collection, name)
        assert rejection.code == "several_notebooks"
        assert "one of 2 notebooks for learner 1001" in rejection.reason
        assert "Keep only the notebook to grade" in rejection.reason


def test_canvas_higher_submission_id_wins(tmp_path):
    newer = notebook_bytes("newer")
    source = build_zip(tmp_path / "submissions.zip", [
        ("doejane_1001_5001_assessment.ipynb", notebook_bytes("older")),
        ("doejane_1001_5009_assessment.ipynb", newer),
    ])

    collection = collect_submissions(source, tmp_path / "work")

    assert len(collection.submissions) == 1
    assert collection.submissions[0].notebook.read_bytes() == newer
    assert rejection_for(collection, "doejane_1001_5001_assessment.ipynb").code == "superseded"


def test_canvas_stray_file_rejected(tmp_path):
    source = build_zip(tmp_path / "submissions.zip", [
        ("doejane_1001_5001_assessment.ipynb", notebook_bytes("a")),
        ("smithbob_1002_5002_assessment.ipynb", notebook_bytes("b")),
        ("solution.ipynb", notebook_bytes("staff")),
    ])

    collection = collect_submissions(source, tmp_path / "work")

    assert collection.layout == "canvas"
    assert sorted(by_learner(collection)) == ["1001", "1002"]
    stray = rejection_for(collection, "solution.ipynb")
    assert stray.code == "unrecognised_name"
    assert "does not follow the Canvas naming" in stray.reason


# ---------------------------------------------------------------- Moodle


def test_moodle_zip_participant_folders(tmp_path):
    jane = notebook_bytes("jane")
    source = build_zip(tmp_path / "moodle.zip", [
        ("Jane Doe_2001_assignsubmission_file_/nslkdd_assessment.ipynb", jane),
        # Older Moodle releases leave out the trailing underscore.
        ("Bob Smith_2002_assignsubmission_file/lab.ipynb", notebook_bytes("bob")),
        ("Bob Smith_2002_assignsubmission_onlinetext_/onlinetext.html", b"<p>see attached</p>"),
        ("Zoë Ångström_2004_assignsubmission_file_/work/assessment.ipynb", notebook_bytes("zoe")),
        ("Ann Lee_2003_assignsubmission_file_/a.ipynb", notebook_bytes("ann a")),
        ("Ann Lee_2003_assignsubmission_file_/b.ipynb", notebook_bytes("ann b")),
    ])
    work_dir = tmp_path / "work"
    before = files_outside(tmp_path, work_dir)

    collection = collect_submissions(source, work_dir)

    assert collection.layout == "moodle"
    learners = by_learner(collection)
    assert sorted(learners) == ["2001", "2002", "2004"]
    assert learners["2001"].notebook.read_bytes() == jane
    assert learners["2001"].original_name == "Jane Doe_2001_assignsubmission_file_/nslkdd_assessment.ipynb"
    assert learners["2004"].original_name == "Zoë Ångström_2004_assignsubmission_file_/work/assessment.ipynb"
    assert len(collection.rejected) == 2
    for name in ("Ann Lee_2003_assignsubmission_file_/a.ipynb", "Ann Lee_2003_assignsubmission_file_/b.ipynb"):
        rejection = rejection_for(collection, name)
        assert rejection.code == "several_notebooks"
        assert rejection.learner_id == "2003"
        assert "one of 2 notebooks for learner 2003" in rejection.reason
    assert files_outside(tmp_path, work_dir) == before


def test_moodle_flat_file_names(tmp_path):
    source = build_zip(tmp_path / "moodle.zip", [
        ("Jane Doe_2001_assignsubmission_file_nslkdd_assessment.ipynb", notebook_bytes("jane")),
        ("Bob Smith_2002_assignsubmission_file_lab_v2.ipynb", notebook_bytes("bob")),
        ("Bob Smith_2002_assignsubmission_onlinetext_onlinetext.html", b"<p>text</p>"),
        ("Ann Lee_2003_assignsubmission_file_lab.py", b"print(1)"),
    ])

    collection = collect_submissions(source, tmp_path / "work")

    assert collection.layout == "moodle"
    assert sorted(by_learner(collection)) == ["2001", "2002"]
    assert len(collection.rejected) == 1
    python_file = rejection_for(collection, "Ann Lee_2003_assignsubmission_file_lab.py")
    assert python_file.learner_id == "2003"
    assert NOT_NOTEBOOK in python_file.reason


def test_moodle_folder_input(tmp_path):
    root = tmp_path / "download"
    jane = write_notebook(root / "Jane Doe_2001_assignsubmission_file_" / "lab.ipynb", "jane")
    write_notebook(root / "Bob Smith_2002_assignsubmission_file_" / "lab.ipynb", "bob")

    collection = collect_submissions(root, tmp_path / "work")

    assert collection.layout == "moodle"
    learners = by_learner(collection)
    assert sorted(learners) == ["2001", "2002"]
    assert learners["2001"].notebook == root / "Jane Doe_2001_assignsubmission_file_" / "lab.ipynb"
    assert learners["2001"].sha256 == hashlib.sha256(jane).hexdigest()
    assert collection.rejected == []
    assert not (tmp_path / "work").exists()


# ---------------------------------------------------------------- plain zips and folders


def test_plain_zip_wrapper_folder_removed(tmp_path):
    source = build_zip(tmp_path / "cohort.zip", [
        ("cohort/jane.ipynb", notebook_bytes("jane")),
        ("cohort/bob/assessment.ipynb", notebook_bytes("bob")),
        ("cohort/README.txt", b"notes"),
        ("cohort/.ipynb_checkpoints/jane-checkpoint.ipynb", notebook_bytes("old")),
        ("__MACOSX/cohort/._jane.ipynb", b"\x00\x05\x16\x07"),
    ])

    collection = collect_submissions(source, tmp_path / "work")

    assert collection.layout == "folder"
    assert sorted(by_learner(collection)) == ["bob", "jane"]
    assert collection.rejected == []


def test_folder_skips_checkpoints_and_hidden(tmp_path):
    root = tmp_path / "cohort"
    write_notebook(root / "jane.ipynb", "jane")
    write_notebook(root / "bob" / "assessment.ipynb", "bob")
    write_notebook(root / ".ipynb_checkpoints" / "jane-checkpoint.ipynb", "old")
    write_notebook(root / ".hidden.ipynb", "hidden")
    (root / "notes.txt").write_text("staff notes")
    (root / "carol.py").write_text("print('carol')")

    collection = collect_submissions(root, tmp_path / "work")

    assert collection.layout == "folder"
    assert sorted(by_learner(collection)) == ["bob", "jane"]
    assert by_learner(collection)["bob"].notebook == root / "bob" / "assessment.ipynb"
    assert len(collection.rejected) == 1
    assert NOT_NOTEBOOK in rejection_for(collection, "carol.py").reason


def test_folder_links_rejected_not_followed(tmp_path):
    outside = tmp_path / "outside"
    write_notebook(outside / "secret.ipynb", "grader data")
    root = tmp_path / "cohort"
    write_notebook(root / "jane.ipynb", "jane")
    (root / "mallory.ipynb").symlink_to(outside / "secret.ipynb")
    (root / "eve").symlink_to(outside)
    before = files_outside(tmp_path, tmp_path / "work")

    collection = collect_submissions(root, tmp_path / "work")

    assert sorted(by_learner(collection)) == ["jane"]
    assert len(collection.rejected) == 2
    link = rejection_for(collection, "mallory.ipynb")
    assert link.code == "symlink"
    assert "'mallory.ipynb' is a symbolic link" in link.reason
    assert "Copy the notebook itself" in link.reason
    folder_link = rejection_for(collection, "eve")
    assert folder_link.code == "symlink"
    assert files_outside(tmp_path, tmp_path / "work") == before


def test_folder_fifo_rejected(tmp_path):
    root = tmp_path / "cohort"
    write_notebook(root / "jane.ipynb", "jane")
    os.mkfifo(root / "pipe.ipynb")

    collection = collect_submissions(root, tmp_path / "work")

    assert sorted(by_learner(collection)) == ["jane"]
    assert rejection_for(collection, "pipe.ipynb").code == "not_regular_file"


def test_folder_learner_with_two_notebooks(tmp_path):
    root = tmp_path / "cohort"
    write_notebook(root / "jane" / "a.ipynb", "a")
    write_notebook(root / "jane" / "b.ipynb", "b")
    write_notebook(root / "bob.ipynb", "bob")

    collection = collect_submissions(root, tmp_path / "work")

    assert sorted(by_learner(collection)) == ["bob"]
    assert rejection_for(collection, "jane/a.ipynb").code == "several_notebooks"
    assert rejection_for(collection, "jane/b.ipynb").code == "several_notebooks"


def test_folder_learner_id_kept_as_given(tmp_path):
    root = tmp_path / "cohort"
    write_notebook(root / "Jane Doe (v2).ipynb", "jane")

    collection = collect_submissions(root, tmp_path / "work")

    (submission,) = collection.submissions
    assert submission.learner_id == "Jane Doe (v2)"
    assert submission.original_name == "Jane Doe (v2).ipynb"


def test_learner_id_unicode_forms_are_one_learner(tmp_path):
    root = tmp_path / "cohort"
    write_notebook(root / "Zo\u00eb.ipynb", "nfc")
    write_notebook(root / "Zoe\u0308.ipynb", "nfd")

    collection = collect_submissions(root, tmp_path / "work")

    assert collection.submissions == []
    assert {rejection.learner_id for rejection in collection.rejected} == {"Zo\u00eb"}


def test_zip_unsafe_learner_id_extracted_safely(tmp_path):
    download = tmp_path / "cohort.zip"
    with zipfile.ZipFile(download, "w") as archive:
        archive.writestr("../../x/ab.ipynb", "{}")  # rejected: unsafe path
        archive.writestr("cohort/=cmd|' .ipynb", nbformat.writes(nbformat.v4.new_notebook()))
        archive.writestr("cohort/bob.ipynb", nbformat.writes(nbformat.v4.new_notebook()))

    collection = collect_submissions(download, tmp_path / "work")

    ids = sorted(submission.learner_id for submission in collection.submissions)
    assert ids == ["=cmd|'", "bob"]
    for submission in collection.submissions:
        assert submission.notebook.resolve().is_relative_to((tmp_path / "work").resolve())
        assert "|" not in str(submission.notebook)


# ---------------------------------------------------------------- hostile zips


def test_zip_path_traversal_rejected(tmp_path):
    absolute_target = Path("/tmp") / f"adgrade-test-{uuid.uuid4().hex}.ipynb"
    source = build_zip(tmp_path / "evil.zip", [
        ("../evil.ipynb", notebook_bytes("evil")),
        (str(absolute_target), notebook_bytes("absolute")),
        ("jane/../../../escape.ipynb", notebook_bytes("escape")),
        ("C:/Users/evil.ipynb", notebook_bytes("drive")),
        ("..\\windows.ipynb", notebook_bytes("backslash")),
        ("jane.ipynb", notebook_bytes("jane")),
    ])
    work_dir = tmp_path / "work"
    before = files_outside(tmp_path, work_dir)

    collection = collect_submissions(source, work_dir)

    assert sorted(by_learner(collection)) == ["jane"]
    assert len(collection.rejected) == 5
    traversal = rejection_for(collection, "../evil.ipynb")
    assert traversal.code == "unsafe_path"
    assert "'..' component" in traversal.reason
    assert "not extracted" in traversal.reason
    absolute = rejection_for(collection, str(absolute_target))
    assert absolute.code == "unsafe_path"
    assert "absolute path" in absolute.reason
    assert rejection_for(collection, "jane/../../../escape.ipynb").code == "unsafe_path"
    assert rejection_for(collection, "C:/Users/evil.ipynb").code == "unsafe_path"
    assert rejection_for(collection, "..\\windows.ipynb").code == "unsafe_path"
    assert not absolute_target.exists()
    assert files_outside(tmp_path, work_dir) == before
    extracted = [path.relative_to(work_dir) for path in work_dir.rglob("*") if path.is_file()]
    assert len(extracted) == 1


def test_zip_symlink_and_device_entries(tmp_path):
    source = build_zip(tmp_path / "links.zip", [
        (unix_entry("mallory.ipynb", stat.S_IFLNK), b"/etc/passwd"),
        (unix_entry("device.ipynb", stat.S_IFCHR), b""),
        (unix_entry("jane.ipynb", stat.S_IFREG), notebook_bytes("jane")),
    ])
    work_dir = tmp_path / "work"

    collection = collect_submissions(source, work_dir)

    assert sorted(by_learner(collection)) == ["jane"]
    link = rejection_for(collection, "mallory.ipynb")
    assert link.code == "symlink"
    assert "symbolic link inside the zip" in link.reason
    device = rejection_for(collection, "device.ipynb")
    assert device.code == "not_regular_file"
    assert "device file, FIFO or socket" in device.reason
    assert not any(path.is_symlink() for path in work_dir.rglob("*"))
    assert [path.name for path in work_dir.rglob("*.ipynb")] == ["jane.ipynb"]


def test_zip_bomb_stopped_while_streaming(tmp_path):
    source = tmp_path / "bomb.zip"
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("jane.ipynb", notebook_bytes("jane"))
        with archive.open("bomb.ipynb", "w") as entry:
            for _ in range(400):
                entry.write(zeros)
    assert source.stat().st_size < 2 * 1024 * 1024
    work_dir = tmp_path / "work"
    # A per-file limit above the bomb's size leaves the compression ratio as the only check that can stop it.
    limits = ExtractionLimits(max_file_bytes=1024 * 1024 * 1024, max_total_bytes=1024 * 1024 * 1024)

    started = time.monotonic()
    collection = collect_submissions(source, work_dir, limits)
    seconds = time.monotonic() - started

    assert seconds < 5
    assert sorted(by_learner(collection)) == ["jane"]
    bomb = rejection_for(collection, "bomb.ipynb")
    assert bomb.code == "compression_ratio"
    assert "more than 100 times its compressed size" in bomb.reason
    assert "zip bomb" in bomb.reason
    assert not (collection.extracted_to / "bomb").exists()
    written = sum(path.stat().st_size for path in work_dir.rglob("*") if path.is_file())
    assert written < 1024 * 1024


def forge_uncompressed_size(data: bytearray, name: bytes, size: int) -> None:
    """Overwrite the uncompressed size of entry `name` in its local header and its central directory record."""
    # (signature, offset of the uncompressed size, offset of the name length, header length before the name)
    headers = ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46))
    for signature, size_offset, name_length_offset, fixed_length in headers:
        start = data.find(signature)
        while start != -1:
            name_length = struct.unpack_from("<H", data, start + name_length_offset)[0]
            name_start = start + fixed_length
            if data[name_start:name_start + name_length] == name:
                struct.pack_into("<I", data, start + size_offset, size)
            start = data.find(signature, start + 4)


def test_zip_bomb_over_file_limit_not_read(tmp_path):
    source = tmp_path / "bomb.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("jane.ipynb", notebook_bytes("jane"))
        archive.writestr("bomb.ipynb", bytes(80 * 1024 * 1024))

    collection = collect_submissions(source, tmp_path / "work")

    assert sorted(by_learner(collection)) == ["jane"]
    bomb = rejection_for(collection, "bomb.ipynb")
    assert bomb.code == "too_large"
    assert "larger than the limit of 64 MiB for one file" in bomb.reason


def test_zip_forged_size_header(tmp_path):
    # The headers claim 100 bytes for an entry that inflates to 50 MiB.
    source = tmp_path / "forged.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("jane.ipynb", notebook_bytes("jane"))
        archive.writestr("forged.ipynb", bytes(50 * 1024 * 1024))
    data = bytearray(source.read_bytes())
    forge_uncompressed_size(data, b"forged.ipynb", 100)
    source.write_bytes(bytes(data))
    assert zipfile.ZipFile(source).getinfo("forged.ipynb").file_size == 100

    collection = collect_submissions(source, tmp_path / "work")

    assert sorted(by_learner(collection)) == ["jane"]
    forged = rejection_for(collection, "forged.ipynb")
    assert forged.code == "corrupt_entry"
    assert "could not be extracted" in forged.reason


def test_zip_oversized_entry_rejected(tmp_path):
    source = build_zip(tmp_path / "big.zip", [
        ("jane.ipynb", notebook_bytes("jane")),
        ("bob.ipynb", os.urandom(300 * 1024)),
    ])
    limits = ExtractionLimits(max_file_bytes=200 * 1024)

    collection = collect_submissions(source, tmp_path / "work", limits)

    assert sorted(by_learner(collection)) == ["jane"]
    big = rejection_for(collection, "bob.ipynb")
    assert big.code == "too_large"
    assert big.learner_id == "bob"
    assert "larger than the limit of 204800 bytes for one file" in big.reason


def test_zip_too_many_entries(tmp_path):
    entries = [(f"learner{index}.ipynb", notebook_bytes(str(index))) for index in range(6)]
    source = build_zip(tmp_path / "many.zip", entries)

    with pytest.raises(BatchInputError, match=r"has 6 entries, over the limit of 5"):
        collect_submissions(source, tmp_path / "work", ExtractionLimits(max_entries=5))
    assert not (tmp_path / "work").exists()


def test_zip_total_limit_rejects_whole_zip(tmp_path):
    source = build_zip(tmp_path / "cohort.zip", [
        (f"learner{index}.ipynb", os.urandom(100 * 1024)) for index in range(5)
    ])
    work_dir = tmp_path / "work"

    with pytest.raises(BatchInputError, match=r"over the total limit"):
        collect_submissions(source, work_dir, ExtractionLimits(max_total_bytes=250 * 1024))
    assert list(work_dir.iterdir()) == []


def test_zip_overlapping_entries_rejected(tmp_path):
    source = build_zip(tmp_path / "overlap.zip", [
        ("jane.ipynb", notebook_bytes("jane")),
        ("bob.ipynb", notebook_bytes("bob")),
    ])
    data = bytearray(source.read_bytes())
    # Point bob's central directory record at jane's local header, as overlapping zip bombs do.
    second_record = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    struct.pack_into("<I", data, second_record + 42, 0)
    source.write_bytes(bytes(data))

    with pytest.raises(BatchInputError, match=r"overlapping entries"):
        collect_submissions(source, tmp_path / "work")


def test_corrupt_zip_raises(tmp_path):
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"this is not a zip file at all")
    truncated = build_zip(tmp_path / "truncated.zip", [("jane.ipynb", notebook_bytes("jane"))])
    truncated.write_bytes(truncated.read_bytes()[:-30])

    with pytest.raises(BatchInputError, match=r"garbage.zip is not a valid zip file"):
        collect_submissions(garbage, tmp_path / "work")
    with pytest.raises(BatchInputError, match=r"truncated.zip is not a valid zip file"):
        collect_submissions(truncated, tmp_path / "work")


def test_nested_zip_not_expanded(tmp_path):
    inner = build_zip(tmp_path / "inner.zip", [("bob.ipynb", notebook_bytes("bob"))])
    source = build_zip(tmp_path / "outer.zip", [
        ("jane.ipynb", notebook_bytes("jane")),
        ("bob_submission.zip", inner.read_bytes()),
    ])
    work_dir = tmp_path / "work"

    collection = collect_submissions(source, work_dir)

    assert sorted(by_learner(collection)) == ["jane"]
    nested = rejection_for(collection, "bob_submission.zip")
    assert nested.code == "archive"
    assert "archives inside the batch input are not expanded" in nested.reason
    assert not list(work_dir.rglob("bob*"))


def test_zip_encrypted_entry_rejected(tmp_path):
    source = build_zip(tmp_path / "secret.zip", [
        ("jane.ipynb", notebook_bytes("jane")),
        ("bob.ipynb", notebook_bytes("bob")),
    ])
    data = bytearray(source.read_bytes())
    # Set the "encrypted" flag bit on bob's central directory record.
    second_record = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    flags = struct.unpack_from("<H", data, second_record + 8)[0]
    struct.pack_into("<H", data, second_record + 8, flags | 0x1)
    source.write_bytes(bytes(data))

    collection = collect_submissions(source, tmp_path / "work")

    assert sorted(by_learner(collection)) == ["jane"]
    assert rejection_for(collection, "bob.ipynb").code == "encrypted"


# ---------------------------------------------------------------- manifests


def test_manifest_rows(tmp_path):
    jane = write_notebook(tmp_path / "notebooks" / "jane.ipynb", "jane")
    write_notebook(tmp_path / "notebooks" / "bob.ipynb", "bob")
    write_notebook(tmp_path / "notebooks" / "ann.ipynb", "ann")
    absolute = tmp_path / "elsewhere" / "carl.ipynb"
    write_notebook(absolute, "carl")
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(
        "\ufeffstudent_id,notebook\n"
        "s-001,notebooks/jane.ipynb\n"
        "s-002,notebooks/missing.ipynb\n"
        "s-003,notebooks/bob.ipynb\n"
        "s-003,notebooks/ann.ipynb\n"
        ",notebooks/ann.ipynb\n"
        f"s-004,{absolute}\n"
        "s-005,notebooks/export.html\n"
        "\n".encode("utf-8")
    )

    collection = collect_submissions(manifest, tmp_path / "work")

    assert collection.layout == "manifest"
    learners = by_learner(collection)
    assert sorted(learners) == ["s-001", "s-004"]
    assert learners["s-001"].notebook == tmp_path / "notebooks" / "jane.ipynb"
    assert learners["s-001"].sha256 == hashlib.sha256(jane).hexdigest()
    assert learners["s-001"].original_name == "notebooks/jane.ipynb"
    assert learners["s-004"].notebook == absolute

    assert len(collection.rejected) == 5
    missing = rejection_for(collection, "manifest.csv line 3")
    assert missing.code == "missing_file"
    assert "notebook 'notebooks/missing.ipynb' does not exist" in missing.reason
    assert "A relative path starts from the manifest's folder" in missing.reason
    duplicate = rejection_for(collection, "manifest.csv line 4")
    assert duplicate.code == "duplicate"
    assert "learner id 's-003' also appears on line(s) 5" in duplicate.reason
    assert rejection_for(collection, "manifest.csv line 5").code == "duplicate"
    empty = rejection_for(collection, "manifest.csv line 6")
    assert empty.code == "empty_id"
    assert "learner id is empty" in empty.reason
    html = rejection_for(collection, "manifest.csv line 8")
    assert NOT_NOTEBOOK in html.reason
    assert not (tmp_path / "work").exists()


def test_manifest_shared_notebook_rejected(tmp_path):
    write_notebook(tmp_path / "jane.ipynb", "jane")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("learner_id;path\nA1;jane.ipynb\nA2;./jane.ipynb\n", encoding="utf-8")

    collection = collect_submissions(manifest, tmp_path / "work")

    assert collection.submissions == []
    shared = rejection_for(collection, "manifest.csv line 2")
    assert shared.code == "duplicate"
    assert "is also listed on line(s) 3 for another learner" in shared.reason


def test_manifest_link_rejected(tmp_path):
    write_notebook(tmp_path / "outside" / "secret.ipynb", "grader data")
    (tmp_path / "mallory.ipynb").symlink_to(tmp_path / "outside" / "secret.ipynb")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,file\nm1,mallory.ipynb\n", encoding="utf-8")

    collection = collect_submissions(manifest, tmp_path / "work")

    assert collection.submissions == []
    assert rejection_for(collection, "manifest.csv line 2").code == "symlink"


def test_manifest_missing_columns(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("name,notebook\nJane,jane.ipynb\n", encoding="utf-8")

    with pytest.raises(BatchInputError, match=r"needs a learner id column \(learner_id or id or student_id\)"):
        collect_submissions(manifest, tmp_path / "work")


def test_manifest_not_utf8(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes("learner_id,path\nJosé,jose.ipynb\n".encode("latin-1"))

    with pytest.raises(BatchInputError, match=r"is not UTF-8 text"):
        collect_submissions(manifest, tmp_path / "work")


# ---------------------------------------------------------------- the input itself and learner ids


def test_missing_input_raises(tmp_path):
    with pytest.raises(BatchInputError, match=r"does not exist"):
        collect_submissions(tmp_path / "nothing.zip", tmp_path / "work")


def test_unsupported_input_raises(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a batch")

    with pytest.raises(BatchInputError, match=r"is not a folder, a .zip file or a .csv manifest"):
        collect_submissions(notes, tmp_path / "work")


@pytest.mark.parametrize("raw", ["..", ".", "../etc", "a/b", "Zoë", " ", "x" * 300, ".hidden"])
def test_safe_learner_id_is_a_folder_name(raw):
    if not raw.strip():
        with pytest.raises(ValueError):
            safe_learner_id(raw)
        return
    learner_id = safe_learner_id(raw)
    assert learner_id not in ("", ".", "..")
    assert not learner_id.startswith(".")
    assert len(learner_id) <= 100
    assert all(character.isascii() and (character.isalnum() or character in "._@-") for character in learner_id)


def test_safe_learner_id_keeps_safe_ids():
    assert safe_learner_id("1001") == "1001"
    assert safe_learner_id("jane.doe@example.org") == "jane.doe@example.org"
    assert safe_learner_id("Zoë") != safe_learner_id("Zoé")
