"""Scoring safeguards: forged reports and hostile export folders are rejected."""

from __future__ import annotations

import json
import os
from pathlib import Path

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


SCORER_PARENT = """
import sys
from pathlib import Path
from harness.rubric import load_rubric
from harness.scoring import Scorer
scorer = Scorer(load_rubric(), Path(sys.argv[1]), Path(sys.argv[2]))
print(scorer.process.pid, flush=True)
sys.stdin.read()
"""


def test_scorer_exits_when_grader_killed(tmp_path):
    """A scoring process whose grader was killed outright stops instead of waiting a day for its context."""
    import signal
    import subprocess
    import sys
    import time

    grader = subprocess.Popen([sys.executable, "-c", SCORER_PARENT, str(tmp_path), str(tmp_path / "scoring")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    scorer = int(grader.stdout.readline())
    time.sleep(1)
    grader.send_signal(signal.SIGKILL)
    grader.wait(timeout=30)

    deadline = time.monotonic() + 120
    while Path(f"/proc/{scorer}").exists() and "State:\tZ" not in Path(f"/proc/{scorer}/status").read_text():
        assert time.monotonic() < deadline, f"scoring process {scorer} outlived its grader"
        time.sleep(0.5)

