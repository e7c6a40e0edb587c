"""NSL-KDD files: locating, verifying, loading and fetching the canonical text files."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

DATA_ENV = "ADGRADE_DATA"
URL_ENV = "ADGRADE_DATA_URL"

# NOTE: a public mirror of the unmodified files. It could not be reached from the
# machines this project is developed on, so a download is accepted only when every
# checksum below matches.
DEFAULT_URL = "https://raw.githubusercontent.com/defcom17/NSL_KDD/master/"

TRAIN_FILE = "KDDTrain+_20Percent.txt"
TEST_FILE = "KDDTest+.txt"
TEST21_FILE = "KDDTest-21.txt"


@dataclass(frozen=True)
class DataFile:
    """One canonical NSL-KDD file and the facts used to verify it."""

    name: str
    sha256: str
    rows: int
    normal_rows: int


FILES: dict[str, DataFile] = {
    TRAIN_FILE: DataFile(TRAIN_FILE, "7ea86479faab5ca2190b7f18b4982fb058ce5bf2b46e0e1017d0d9ef90f9c16e", 25192, 13449),
    TEST_FILE: DataFile(TEST_FILE, "fa46b0935342616aa83b7c2578db355b6a7aaabbc492248172c7a1e8b7ab8f84", 22544, 9711),
    TEST21_FILE: DataFile(TEST21_FILE, "746993ac9e25868827cacf09eab450050a2a1056e1ce48a1ad39f5dc801d531d", 11850, 2152),
}

# The files grading needs: the learner's training file and the grader-held test file.
REQUIRED_FILES = (TRAIN_FILE, TEST_FILE)

CATEGORICAL_COLUMNS = ("protocol_type", "service", "flag")
LABEL_COLUMN = "label"
DIFFICULTY_COLUMN = "difficulty_level"
NORMAL_LABEL = "normal"

COLUMNS: tuple[str, ...] = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
    LABEL_COLUMN, DIFFICULTY_COLUMN,
)
NUMERIC_COLUMNS: tuple[str, ...] = tuple(
    c for c in COLUMNS if c not in CATEGORICAL_COLUMNS and c not in (LABEL_COLUMN, DIFFICULTY_COLUMN)
)

# Every label that occurs in the NSL-KDD training and test files.
LABELS: frozenset[str] = frozenset({
    "normal",
    # denial of service
    "back", "land", "neptune", "pod", "smurf", "teardrop", "apache2", "mailbomb",
    "processtable", "udpstorm",
    # probing
    "ipsweep", "nmap", "portsweep", "satan", "mscan", "saint",
    # remote to local
    "ftp_write", "guess_passwd", "imap", "multihop", "phf", "spy", "warezclient",
    "warezmaster", "sendmail", "named", "snmpgetattack", "snmpguess", "xlock", "xsnoop",
    "worm", "httptunnel",
    # user to root
    "buffer_overflow", "loadmodule", "perl", "rootkit", "ps", "sqlattack", "xterm",
})


class DataError(Exception):
    """A data file is missing, altered or malformed; the message names the file and the fix."""


@dataclass
class FileReport:
    """The outcome of verifying one file."""

    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the data directory: the argument if given, else $ADGRADE_DATA."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV)
    if not data_dir:
        raise DataError(
            f"No NSL-KDD data directory was given. Pass --data-dir DIR or set {DATA_ENV}=DIR, "
            f"where DIR holds {', '.join(REQUIRED_FILES)}. To download them: adgrade data fetch DIR."
        )
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise DataError(
            f"NSL-KDD data directory {path} does not exist. Create it and run "
            f"'adgrade data fetch {path}', or copy {', '.join(REQUIRED_FILES)} into it."
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _content_problems(path: Path, expected: DataFile) -> list[str]:
    """Describe rows that break the format: field count, label vocabulary, row count."""
    problems: list[str] = []
    rows = 0
    bad_width: list[int] = []
    unknown_labels: set[str] = set()
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            rows += 1
            fields = line.split(",")
            if len(fields) != len(COLUMNS):
                bad_width.append(line_number)
                continue
            if fields[41] not in LABELS:
                unknown_labels.add(fields[41])
    if bad_width:
        listed = ", ".join(str(n) for n in bad_width[:5])
        problems.append(f"{len(bad_width)} row(s) do not have {len(COLUMNS)} fields (line {listed})")
    if unknown_labels:
        listed = ", ".join(sorted(unknown_labels)[:5])
        problems.append(f"unknown attack label(s): {listed}")
    if rows != expected.rows:
        problems.append(f"{rows} rows instead of {expected.rows} (truncated or extended)")
    return problems


def verify_file(path: Path) -> FileReport:
    """Check one file against its known SHA-256, field count, labels and row count."""
    expected = FILES[path.name]
    report = FileReport(name=path.name, ok=True)
    if not path.is_file():
        report.ok = False
        report.problems.append("missing")
        return report

    if sha256_of(path) != expected.sha256:
        report.ok = False
        report.problems.append("SHA-256 does not match the canonical file")
        report.problems.extend(_content_problems(path, expected))
    return report


def verify_dir(data_dir: Path, names: tuple[str, ...] = REQUIRED_FILES) -> list[FileReport]:
    return [verify_file(data_dir / name) for name in names]


def require_files(data_dir: Path, names: tuple[str, ...] = REQUIRED_FILES) -> None:
    """Raise DataError naming every required file that is missing or altered."""
    failures = [report for report in verify_dir(data_dir, names) if not report.ok]
    if not failures:
        return
    details = "; ".join(f"{r.name}: {', '.join(r.problems)}" for r in failures)
    raise DataError(
        f"NSL-KDD data in {data_dir} is not usable ({details}). Replace the listed files with the "
        f"canonical ones: run 'adgrade data fetch {data_dir}', or copy the unmodified files from the "
        f"NSL-KDD distribution into {data_dir}."
    )


def load(path: Path) -> pd.DataFrame:
    """Load one NSL-KDD text file with the canonical column names."""
    import pandas as pd  # imported here so that the command line starts quickly

    if not path.is_file():
        raise DataError(f"NSL-KDD file {path} is missing. Run 'adgrade data fetch {path.parent}'.")
    frame = pd.read_csv(path, header=None, names=list(COLUMNS), index_col=False)
    if frame.shape[1] != len(COLUMNS) or frame[DIFFICULTY_COLUMN].isna().any():
        raise DataError(f"{path} does not have {len(COLUMNS)} fields on every row. Fetch it again.")
    return frame


def fetch(data_dir: Path, base_url: str | None = None, names: tuple[str, ...] = tuple(FILES)) -> list[FileReport]:
    """Download the files into data_dir, keeping each only if its SHA-256 matches.

    A file already present with the right checksum is not downloaded again. A file
    that fails verification is deleted from the temporary area and never replaces
    a file in data_dir.
    """
    base_url = base_url or os.environ.get(URL_ENV) or DEFAULT_URL
    if not base_url.endswith("/"):
        base_url += "/"
    data_dir.mkdir(parents=True, exist_ok=True)

    reports = []
    for name in names:
        target = data_dir / name
        if target.is_file() and sha256_of(target) == FILES[name].sha256:
            reports.append(FileReport(name=name, ok=True, problems=["already present"]))
            continue
        reports.append(_fetch_one(base_url + name, target))
    return reports


def _fetch_one(url: str, target: Path) -> FileReport:
    report = FileReport(name=target.name, ok=False)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, tmp)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            tmp_path.unlink(missing_ok=True)
            logger.warning("download of %s failed: %s", url, error)
            report.problems.append(f"download from {url} failed: {error}")
            return report

    digest = sha256_of(tmp_path)
    if digest != FILES[target.name].sha256:
        tmp_path.unlink(missing_ok=True)
        report.problems.append(f"downloaded file from {url} has SHA-256 {digest}, not the canonical one; discarded")
        return report

    tmp_path.chmod(0o444)
    os.replace(tmp_path, target)
    report.ok = True
    return report
