"""Scoring safeguards: forged reports and hostile export folders are rejected."""

from __future__ import annotations

import json
import os

import pytest

from harness.grader import copy_artifacts
from harness.rubric import load_rubric
from harness.scoring import ScoringError, read_report


def test_report_with_wrong_nonce_rejected(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"nonce": "guessed", "tests": {"test_x": {"status": "passed"}}}))
    with pytest.raises(ScoringError, match="not written by this scoring run"):
        read_report(path, "expected-nonce")


def test_report_without_nonce_rejected(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"tests": {}}))
    with pytest.raises(ScoringError, match="not written by this scoring run"):
        read_report(path, "expected-nonce")


def test_report_with_nonce_accepted(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"nonce": "n1", "tests": {"test_x": {"status": "passed"}}}))
    assert read_report(path, "n1") == {"test_x": {"status": "passed"}}


def test_copy_artifacts_skips_links_and_folders(tmp_path):
    source = tmp_path / "export"
    source.mkdir()
    (source / "xgb_acc.json").write_text("0.99")
    (source / "nested").mkdir()
    (source / "nested" / "big.bin").write_bytes(b"x" * 10)
    os.symlink("/usr/share", source / "leak")
    os.symlink("/etc/hostname", source / "x_test.npy")
    target = tmp_path / "artifacts"
    warnings = copy_artifacts(source, target, load_rubric())
    assert sorted(p.name for p in target.iterdir()) == ["xgb_acc.json"]
    assert "leak" in warnings[0]
    assert "x_test.npy" in warnings[0]
    assert "nested" in warnings[0]


def test_copy_artifacts_stops_at_size_limit(tmp_path):
    rubric = load_rubric()
    for spec in rubric.artifacts:
        spec.max_bytes = 10
    source = tmp_path / "export"
    source.mkdir()
    (source / "a.npy").write_bytes(b"x" * 1024 * 1024)
    (source / "b.npy").write_bytes(b"x" * 1024 * 1024)
    warnings = copy_artifacts(source, tmp_path / "artifacts", rubric)
    assert [p.name for p in (tmp_path / "artifacts").iterdir()] == ["a.npy"]
    assert "b.npy" in warnings[0]
