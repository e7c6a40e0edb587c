"""Batch input for `adgrade grade-batch`: a folder, a zip download or a CSV manifest, turned into submissions.

Recognises the Canvas and Moodle bulk-download layouts, extracts zips with limits against
path traversal, links and zip bombs, and reports every entry it does not use as a Rejection.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import lzma
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
MAX_MANIFEST_BYTES = 16 * MIB
MAX_LEARNER_ID_LENGTH = 100
MAX_FILE_NAME_LENGTH = 150

LAYOUT_FOLDER = "folder"
LAYOUT_CANVAS = "canvas"
LAYOUT_MOODLE = "moodle"
LAYOUT_MANIFEST = "manifest"

NOTEBOOK_SUFFIX = ".ipynb"
# Files a learner may have handed in instead of the notebook: exports of it, or an archive around it.
EXPORT_SUFFIXES = frozenset({".py", ".html", ".htm", ".pdf", ".json"})
ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"})

MANIFEST_ID_COLUMNS = ("learner_id", "id", "student_id")
MANIFEST_PATH_COLUMNS = ("path", "notebook", "file")

# Canvas "Download Submissions": {name}_{userid}_{submissionid}_{original filename}, with LATE_
# before the user id for late work. The name is the sortable name lower-cased without punctuation,
# so it has no underscore. The original filename may contain underscores.
CANVAS_FILE_NAME = re.compile(
    r"(?P<name>[^\W_]+)_(?:(?P<late>LATE)_)?(?P<user_id>\d+)_(?P<submission_id>\d+)_(?P<file_name>.+)"
)
# Canvas renames a re-uploaded file with the same name to name-1.ext, name-2.ext, ...
CANVAS_RESUBMISSION = re.compile(r"(?P<base>.+?)-(?P<number>\d+)")
# Moodle "Download all submissions" in folders: {Full Name}_{participantid}_assignsubmission_{plugin}_
# (older releases omit the trailing underscore). Only the "file" plugin contains uploaded files.
# The "onlinetext" plugin contains the text typed into the editor and is ignored.
MOODLE_FOLDER_NAME = re.compile(r"(?P<name>.+)_(?P<participant_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?")
# With "Download submissions in folders" turned off, the same prefix is put in front of each file name.
MOODLE_FILE_NAME = re.compile(
    r"(?P<name>.+?)_(?P<participant_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file_name>.+)"
)
MOODLE_IGNORED_PLUGINS = frozenset({"onlinetext"})

_UNSAFE_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9._@-]")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:")
# A zip local file header is at least 30 bytes long before the file name and extra field.
_LOCAL_HEADER_MIN_BYTES = 30


class BatchInputError(ValueError):
    """The batch input as a whole cannot be used. The message names the input and the fix."""


@dataclass(frozen=True)
class ExtractionLimits:
    """Limits on the files read from a batch input. The sizes are in bytes.

    NOTE: the defaults are estimates for a cohort of about a thousand notebooks of up to a few MB
    each. Raise them for larger cohorts rather than removing them.
    """

    max_entries: int = 10_000
    max_file_bytes: int = 64 * MIB
    max_total_bytes: int = 4096 * MIB
    # Output bytes per compressed byte of one zip entry. Notebooks written by nbformat 5.11 compress
    # 4-10 times with zlib level 6, with or without megabytes of training-log output.
    # Deflate reaches about 1000 times on repeated bytes.
    # NOTE: a notebook whose saved output repeats one line a million times compresses about 400 times.
    # It is rejected as a zip bomb, although intake would clear that output.
    max_ratio: float = 100.0
    # The ratio is checked only once an entry has produced this many bytes, so that small,
    # repetitive files are not mistaken for zip bombs.
    ratio_check_after_bytes: int = 1 * MIB


@dataclass
class Submission:
    """One learner's notebook, ready for grading."""

    learner_id: str
    notebook: Path
    original_name: str
    sha256: str
    late: bool = False


@dataclass
class Rejection:
    """An entry of the batch input that is not graded, with the reason and the fix."""

    entry: str
    reason: str
    # A short, stable label for the kind of problem (for counting and logs), such as "symlink".
    code: str = ""
    # The learner the entry belongs to, where the layout names one. That learner may still have a
    # graded submission (a "superseded" notebook), or none (a .html handed in instead of the notebook).
    learner_id: str | None = None


@dataclass
class Collection:
    """Everything found in a batch input: the submissions to grade and the entries rejected."""

    submissions: list[Submission] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    layout: str = LAYOUT_FOLDER
    # The folder inside work_dir that contains the notebooks extracted from a zip. None for other inputs.
    extracted_to: Path | None = None


@dataclass
class _Entry:
    """A notebook found in the input, before its learner id is known."""

    name: str
    parts: tuple[str, ...]
    path: Path | None = None
    info: zipfile.ZipInfo | None = None


@dataclass
class _Choice:
    entry: _Entry
    learner_id: str
    late: bool = False


class _EntryRejected(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def collect_submissions(source: Path, work_dir: Path, limits: ExtractionLimits = ExtractionLimits()) -> Collection:
    """Find every learner's notebook in a folder, a zip download or a CSV manifest.

    A zip is extracted into a new folder inside work_dir. Folder and manifest inputs are only
    read, so their submissions point at the original files. Raises BatchInputError when the input
    itself is unusable (missing, of another kind, a corrupt zip, a zip over a total limit, or a
    manifest without the needed columns).
    """
    source = Path(source)
    work_dir = Path(work_dir)
    if not source.exists():
        raise BatchInputError(
            f"Batch input {source} does not exist. Pass a folder of notebooks, a .zip download or a .csv manifest."
        )

    logger.info("Collecting submissions from %s", source)
    if source.is_dir():
        collection = _collect_folder(source, limits)
    elif not stat.S_ISREG(source.stat().st_mode):
        raise BatchInputError(f"Batch input {source} is not a regular file or folder. Pass a folder, a .zip or a .csv.")
    elif source.suffix.lower() == ".csv":
        collection = _collect_manifest(source, limits)
    elif source.suffix.lower() == ".zip" or zipfile.is_zipfile(source):
        collection = _collect_zip(source, work_dir, limits)
    else:
        raise BatchInputError(
            f"Batch input {source} is not a folder, a .zip file or a .csv manifest. "
            "To grade a single notebook, use `adgrade grade`."
        )

    collection.submissions.sort(key=lambda submission: submission.learner_id)
    if collection.rejected:
        # Counts per kind only: entry names often contain learners' names.
        kinds = Counter(rejection.code for rejection in collection.rejected)
        logger.info("Rejected %d entries of %s: %s", len(collection.rejected), source, dict(kinds))
    logger.info(
        "Collected %d submissions and %d rejected entries from %s (layout %s)",
        len(collection.submissions), len(collection.rejected), source, collection.layout,
    )
    return collection


def clean_learner_id(raw: str) -> str:
    """Return a learner id as the LMS or the manifest gives it, with only what no id may contain removed.

    The id is stripped of surrounding space, put in Unicode NFC form (so that "ü" typed two ways is one
    learner), cleared of control characters and cut to MAX_LEARNER_ID_LENGTH. The gradebook keeps this
    id, so that it joins with the LMS's roster; safe_learner_id turns it into a folder name where one is
    needed. Raises ValueError for an id that is empty after cleaning.
    """
    text = unicodedata.normalize("NFC", raw)
    text = "".join(character for character in text if unicodedata.category(character) not in ("Cc", "Cf", "Cs"))
    text = text.strip()[:MAX_LEARNER_ID_LENGTH]
    if not text:
        raise ValueError("learner id is empty")
    return text


def safe_learner_id(raw: str) -> str:
    """Turn a learner id into one that is safe as a folder name, using only [A-Za-z0-9._@-].

    An id that had to change gets the first 8 hex digits of the original's SHA-256, so two different
    ids share a folder only on a hash collision. Raises ValueError for an empty id.
    """
    text = raw.strip()
    if not text:
        raise ValueError("learner id is empty")
    # Leading dots would make a hidden folder, or "." and "..".
    safe = _UNSAFE_ID_CHARACTERS.sub("_", text).lstrip(".")
    if safe == text and len(safe) <= MAX_LEARNER_ID_LENGTH:
        return safe
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    stem = safe[: MAX_LEARNER_ID_LENGTH - len(digest) - 1] or "learner"
    return f"{stem}-{digest}"


# ---------------------------------------------------------------- classifying names


def _is_ignored(parts: tuple[str, ...]) -> bool:
    """Return whether a path is hidden, editor or OS clutter, or Moodle online text, all skipped silently."""
    for part in parts:
        if part.startswith(".") or part == "__MACOSX":
            return True
        folder = MOODLE_FOLDER_NAME.fullmatch(part)
        if folder and folder["plugin"] in MOODLE_IGNORED_PLUGINS:
            return True
    flat = MOODLE_FILE_NAME.fullmatch(parts[-1]) if parts else None
    return bool(flat and flat["plugin"] in MOODLE_IGNORED_PLUGINS)


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _wrong_kind_rejection(entry: str) -> Rejection | None:
    """Return the rejection for a file that looks like a submission but is not a notebook, else None."""
    suffix = _suffix(entry)
    if suffix in ARCHIVE_SUFFIXES:
        return Rejection(
            entry,
            f"'{entry}' is an archive, and archives inside the batch input are not expanded. "
            "Ask the learner to resubmit the .ipynb notebook itself.",
            "archive",
        )
    if suffix in EXPORT_SUFFIXES:
        return Rejection(
            entry,
            f"'{entry}' is not a .ipynb notebook; ask the learner to resubmit the .ipynb.",
            "not_notebook",
        )
    return None


# ---------------------------------------------------------------- folder input


def _collect_folder(root: Path, limits: ExtractionLimits) -> Collection:
    entries, rejected = _scan_folder(root)
    layout, choices, assignment_rejections = _assign_learners(entries, rejected)
    rejected.extend(assignment_rejections)

    submissions = []
    for choice in choices:
        assert choice.entry.path is not None
        try:
            digest = _hash_regular_file(choice.entry.path, choice.entry.name, limits)
        except _EntryRejected as problem:
            rejected.append(Rejection(choice.entry.name, problem.reason, problem.code, choice.learner_id))
            continue
        submissions.append(Submission(choice.learner_id, choice.entry.path, choice.entry.name, digest, choice.late))
    return Collection(submissions, rejected, layout)


def _scan_folder(root: Path) -> tuple[list[_Entry], list[Rejection]]:
    """List the notebooks under root without following links, and reject links and look-alike files."""
    entries: list[_Entry] = []
    rejected: list[Rejection] = []

    def record_walk_error(error: OSError) -> None:
        name = Path(error.filename).relative_to(root).as_posix() if error.filename else str(root)
        rejected.append(Rejection(
            name, f"'{name}' could not be read ({error.strerror}). Check its permissions and run again.", "unreadable"
        ))

    for directory, folder_names, file_names in os.walk(root, onerror=record_walk_error, followlinks=False):
        base = Path(directory)
        relative_base = base.relative_to(root)
        folder_names.sort()
        for folder_name in list(folder_names):
            parts = (relative_base / folder_name).parts
            if _is_ignored(parts):
                folder_names.remove(folder_name)
            elif (base / folder_name).is_symlink():
                # os.walk lists a link to a folder among the folders but does not descend into it.
                name = PurePosixPath(*parts).as_posix()
                rejected.append(_symlink_rejection(name, "the folder"))

        for file_name in sorted(file_names):
            parts = (relative_base / file_name).parts
            if _is_ignored(parts):
                continue
            name = PurePosixPath(*parts).as_posix()
            path = base / file_name
            if _suffix(file_name) == NOTEBOOK_SUFFIX:
                if path.is_symlink():
                    rejected.append(_symlink_rejection(name, "the notebook"))
                else:
                    entries.append(_Entry(name, parts, path=path))
                continue
            rejection = _wrong_kind_rejection(name)
            if rejection is not None:
                rejected.append(rejection)
    return entries, rejected


def _symlink_rejection(name: str, linked_item: str) -> Rejection:
    return Rejection(
        name,
        f"'{name}' is a symbolic link, and links are not followed. Copy {linked_item} itself into the input folder.",
        "symlink",
    )


def _hash_regular_file(path: Path, name: str, limits: ExtractionLimits) -> str:
    """Return the SHA-256 of a regular file, reading it without following a final link or blocking on a FIFO."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise _EntryRejected("missing_file", f"'{name}' does not exist. Fix the path and run again.") from None
    except OSError as error:
        if not path.is_symlink():
            raise _EntryRejected(
                "unreadable", f"'{name}' could not be opened ({error.strerror}). Check its permissions and run again."
            ) from None
        raise _EntryRejected(
            "symlink", f"'{name}' is a symbolic link, and links are not followed. Point to the notebook file itself."
        ) from None

    digest = hashlib.sha256()
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _EntryRejected("not_regular_file", f"'{name}' is not a regular file. Point to the notebook file itself.")
        size = 0
        while chunk := handle.read(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limits.max_file_bytes:
                raise _EntryRejected("too_large", _too_large_reason(name, limits))
            digest.update(chunk)
    return digest.hexdigest()


def _describe_size(count: int) -> str:
    return f"{count / MIB:g} MiB" if count >= MIB else f"{count} bytes"


def _too_large_reason(name: str, limits: ExtractionLimits) -> str:
    return (
        f"'{name}' is larger than the limit of {_describe_size(limits.max_file_bytes)} for one file, so it is not used. "
        "Ask the learner to clear the outputs (Kernel > Restart & Clear Output) and resubmit."
    )


# ---------------------------------------------------------------- learner ids and layouts


def _detect_layout(entries: list[_Entry]) -> str:
    """Return the LMS layout that names at least half of the notebooks, else the plain folder layout."""
    if not entries:
        return LAYOUT_FOLDER
    moodle = sum(1 for entry in entries if _moodle_participant(entry.parts) is not None)
    canvas = sum(1 for entry in entries if CANVAS_FILE_NAME.fullmatch(entry.parts[-1]))
    if moodle and 2 * moodle >= len(entries):
        return LAYOUT_MOODLE
    if canvas and 2 * canvas >= len(entries):
        return LAYOUT_CANVAS
    return LAYOUT_FOLDER


def _moodle_participant(parts: tuple[str, ...]) -> tuple[str, str] | None:
    """Return (participant id, plugin) from a Moodle folder or file name in the path, else None."""
    for part in parts[:-1]:
        folder = MOODLE_FOLDER_NAME.fullmatch(part)
        if folder:
            return folder["participant_id"], folder["plugin"]
    flat = MOODLE_FILE_NAME.fullmatch(parts[-1])
    if flat:
        return flat["participant_id"], flat["plugin"]
    return None


def _assign_learners(
    entries: list[_Entry], rejected: list[Rejection]
) -> tuple[str, list[_Choice], list[Rejection]]:
    """Detect the layout, give each notebook its learner id, and keep one notebook per learner.

    Also fills in the learner id of earlier rejections whose names follow an LMS layout.
    """
    layout = _detect_layout(entries)
    for rejection in rejected:
        if rejection.learner_id is None:
            rejection.learner_id = _lms_learner_id(rejection.entry, layout)
    if layout == LAYOUT_CANVAS:
        choices, rejected = _assign_canvas(entries)
    elif layout == LAYOUT_MOODLE:
        choices, rejected = _assign_moodle(entries)
    else:
        choices, rejected = _assign_folder(entries)
    return layout, choices, rejected


def _lms_learner_id(name: str, layout: str) -> str | None:
    """Return the learner id that an LMS layout encodes in an entry name, else None."""
    try:
        parts = _safe_parts(name)
    except _EntryRejected:
        return None
    if not parts:
        return None
    if layout == LAYOUT_CANVAS:
        match = CANVAS_FILE_NAME.fullmatch(parts[-1])
        return clean_learner_id(match["user_id"]) if match else None
    if layout == LAYOUT_MOODLE:
        participant = _moodle_participant(parts)
        return clean_learner_id(participant[0]) if participant else None
    return None


def _assign_canvas(entries: list[_Entry]) -> tuple[list[_Choice], list[Rejection]]:
    rejected: list[Rejection] = []
    by_learner: dict[str, list[tuple[_Entry, re.Match]]] = defaultdict(list)
    for entry in entries:
        match = CANVAS_FILE_NAME.fullmatch(entry.parts[-1])
        if match is None:
            rejected.append(Rejection(
                entry.name,
                f"'{entry.name}' does not follow the Canvas naming {{name}}_{{userid}}_{{submissionid}}_{{filename}}, "
                "so its learner is unknown. Rename it to that pattern, or grade it on its own.",
                "unrecognised_name",
            ))
            continue
        by_learner[match["user_id"]].append((entry, match))

    choices = []
    for user_id, found in by_learner.items():
        learner_id = clean_learner_id(user_id)
        # The latest notebook has the highest submission id, then the highest -N added by Canvas.
        ranked = sorted(found, key=lambda item: _canvas_rank(item[1]), reverse=True)
        latest_entry, latest_match = ranked[0]
        latest_rank = _canvas_rank(latest_match)
        latest_base = _canvas_base_name(latest_match)
        tied = [
            entry for entry, match in ranked[1:]
            if match["submission_id"] == latest_match["submission_id"]
            and (_canvas_base_name(match) != latest_base or _canvas_rank(match) == latest_rank)
        ]
        if tied:
            rejected.extend(_several_notebooks(learner_id, [entry for entry, _ in found]))
            continue
        for entry, _ in ranked[1:]:
            rejected.append(Rejection(
                entry.name,
                f"'{entry.name}' is an earlier notebook of learner {learner_id}. The latest one, "
                f"'{latest_entry.name}', is graded instead. Remove the latest one from the input to grade this one.",
                "superseded",
                learner_id,
            ))
        choices.append(_Choice(latest_entry, learner_id, late=latest_match["late"] is not None))
    return choices, rejected


def _canvas_rank(match: re.Match) -> tuple[int, int]:
    resubmission = CANVAS_RESUBMISSION.fullmatch(PurePosixPath(match["file_name"]).stem)
    return int(match["submission_id"]), int(resubmission["number"]) if resubmission else 0


def _canvas_base_name(match: re.Match) -> str:
    """Return the learner's file name without the -N that Canvas adds to re-uploads."""
    stem = PurePosixPath(match["file_name"]).stem
    resubmission = CANVAS_RESUBMISSION.fullmatch(stem)
    return resubmission["base"] if resubmission else stem


def _assign_moodle(entries: list[_Entry]) -> tuple[list[_Choice], list[Rejection]]:
    rejected: list[Rejection] = []
    by_learner: dict[str, list[_Entry]] = defaultdict(list)
    for entry in entries:
        participant = _moodle_participant(entry.parts)
        if participant is None or participant[1] != "file":
            rejected.append(Rejection(
                entry.name,
                f"'{entry.name}' is not in a Moodle file submission folder "
                "({Full Name}_{participantid}_assignsubmission_file_), so its learner is unknown. "
                "Move it into its learner's folder, or grade it on its own.",
                "unrecognised_name",
            ))
            continue
        by_learner[participant[0]].append(entry)

    choices = []
    for participant_id, found in by_learner.items():
        learner_id = clean_learner_id(participant_id)
        if len(found) > 1:
            # Moodle keeps every file of the latest attempt and gives no order among them.
            rejected.extend(_several_notebooks(learner_id, found))
            continue
        choices.append(_Choice(found[0], learner_id))
    return choices, rejected


def _assign_folder(entries: list[_Entry]) -> tuple[list[_Choice], list[Rejection]]:
    """Name each learner after the notebook's first sub-folder, or after the notebook if it has none."""
    relative = {id(entry): entry.parts for entry in entries}
    # A zip or folder often wraps the whole cohort in one folder (cohort/jane.ipynb, cohort/bob.ipynb):
    # that folder is not a learner, so it is removed.
    # NOTE: one learner's folder with two notebooks (jane/a.ipynb, jane/b.ipynb) is read the same way,
    # as learners "a" and "b". Only a lone notebook in a folder is named after that folder.
    while len(entries) > 1:
        first_parts = {parts[0] for parts in relative.values() if len(parts) > 1}
        if len(first_parts) != 1 or any(len(parts) == 1 for parts in relative.values()):
            break
        relative = {key: parts[1:] for key, parts in relative.items()}

    by_learner: dict[str, list[_Entry]] = defaultdict(list)
    for entry in entries:
        parts = relative[id(entry)]
        raw_id = parts[0] if len(parts) > 1 else PurePosixPath(parts[0]).stem
        by_learner[clean_learner_id(raw_id)].append(entry)

    choices = []
    rejected: list[Rejection] = []
    for learner_id, found in by_learner.items():
        if len(found) > 1:
            rejected.extend(_several_notebooks(learner_id, found))
            continue
        choices.append(_Choice(found[0], learner_id))
    return choices, rejected


def _several_notebooks(learner_id: str, entries: list[_Entry]) -> list[Rejection]:
    names = ", ".join(f"'{entry.name}'" for entry in entries)
    return [
        Rejection(
            entry.name,
            f"'{entry.name}' is one of {len(entries)} notebooks for learner {learner_id} ({names}), and none "
            "of them is graded because the latest cannot be told apart. Keep only the notebook to grade and run again.",
            "several_notebooks",
            learner_id,
        )
        for entry in entries
    ]


# ---------------------------------------------------------------- zip input


def _collect_zip(source: Path, work_dir: Path, limits: ExtractionLimits) -> Collection:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise BatchInputError(
            f"Batch input {source} is not a valid zip file ({error}). Download it again from the LMS."
        ) from None

    with archive:
        infos = archive.infolist()
        _check_archive(source, infos, limits)
        entries, rejected = _scan_zip(infos)
        layout, choices, assignment_rejections = _assign_learners(entries, rejected)
        rejected.extend(assignment_rejections)

        work_dir.mkdir(parents=True, exist_ok=True)
        extract_root = Path(tempfile.mkdtemp(prefix="batch-input-", dir=work_dir))
        budget = _TotalBudget(source, limits)
        submissions = []
        try:
            for choice in choices:
                submission = _extract_choice(archive, choice, extract_root, limits, budget, rejected)
                if submission is not None:
                    submissions.append(submission)
        except BaseException:
            shutil.rmtree(extract_root, ignore_errors=True)
            raise
    return Collection(submissions, rejected, layout, extracted_to=extract_root)


def _check_archive(source: Path, infos: list[zipfile.ZipInfo], limits: ExtractionLimits) -> None:
    """Raise BatchInputError for a zip with too many entries or with entries that share compressed data."""
    if len(infos) > limits.max_entries:
        raise BatchInputError(
            f"Batch input {source} has {len(infos)} entries, over the limit of {limits.max_entries}. "
            "Split the download, or raise the limit with --max-entries if the cohort is that large."
        )
    # Entries whose compressed data overlap let a small zip expand many times over (a zip bomb
    # without nesting). Data of one entry must end before the next local header starts.
    ordered = sorted(infos, key=lambda info: info.header_offset)
    for current, following in zip(ordered, ordered[1:]):
        if current.header_offset + _LOCAL_HEADER_MIN_BYTES + current.compress_size > following.header_offset:
            raise BatchInputError(
                f"Batch input {source} has overlapping entries ('{current.filename}' and '{following.filename}'), "
                "a sign of a zip bomb or a damaged file. Download it again from the LMS."
            )


def _scan_zip(infos: list[zipfile.ZipInfo]) -> tuple[list[_Entry], list[Rejection]]:
    """Sort the zip's entries into notebooks to extract and rejections, from their names and types only."""
    entries: list[_Entry] = []
    rejected: list[Rejection] = []
    for info in infos:
        name = info.filename
        try:
            parts = _safe_parts(name)
        except _EntryRejected as problem:
            rejected.append(Rejection(name, problem.reason, problem.code))
            continue
        if not parts or info.is_dir() or _is_ignored(parts):
            continue

        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            rejected.append(Rejection(
                name,
                f"'{name}' is a symbolic link inside the zip, so it is not extracted. "
                "Ask the learner to submit the notebook file itself.",
                "symlink",
            ))
            continue
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            rejected.append(Rejection(
                name,
                f"'{name}' is a device file, FIFO or socket, not a regular file, so it is not extracted. "
                "Remove it from the zip.",
                "not_regular_file",
            ))
            continue

        if _suffix(name) == NOTEBOOK_SUFFIX:
            entries.append(_Entry(name, parts, info=info))
            continue
        rejection = _wrong_kind_rejection(name)
        if rejection is not None:
            rejected.append(rejection)
    return entries, rejected


def _safe_parts(name: str) -> tuple[str, ...]:
    """Split a zip entry name into path components, rejecting names that could leave the extraction folder."""
    if "\x00" in name:
        raise _EntryRejected("unsafe_path", f"'{name}' has a NUL byte in its name, so it is not extracted.")
    # Zips made on Windows may use backslashes as separators.
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or _WINDOWS_DRIVE.match(normalised):
        raise _EntryRejected(
            "unsafe_path",
            f"'{name}' has an absolute path, so it is not extracted. "
            "Remove it from the zip, or download the submissions again from the LMS.",
        )
    parts = tuple(part for part in normalised.split("/") if part not in ("", "."))
    if ".." in parts:
        raise _EntryRejected(
            "unsafe_path",
            f"'{name}' has a '..' component that points outside the extraction folder, so it is not extracted. "
            "Remove it from the zip, or download the submissions again from the LMS.",
        )
    return parts


class _TotalBudget:
    """The bytes extracted from one zip so far, checked against ExtractionLimits.max_total_bytes."""

    def __init__(self, source: Path, limits: ExtractionLimits) -> None:
        self.source = source
        self.limit = limits.max_total_bytes
        self.used = 0

    def spend(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise BatchInputError(
                f"Batch input {self.source} expands to more than {_describe_size(self.limit)} of notebooks, over "
                "the total limit, so nothing was extracted. Check the zip for oversized files, or raise the limit "
                "with --max-total-mib if the cohort needs it."
            )


def _extract_choice(
    archive: zipfile.ZipFile,
    choice: _Choice,
    extract_root: Path,
    limits: ExtractionLimits,
    budget: _TotalBudget,
    rejected: list[Rejection],
) -> Submission | None:
    """Extract one chosen notebook to extract_root/LEARNER/NAME.ipynb, or add a Rejection and return None."""
    entry = choice.entry
    assert entry.info is not None
    learner_folder = extract_root / safe_learner_id(choice.learner_id)
    learner_folder.mkdir()
    target = learner_folder / _safe_file_name(entry.parts[-1])
    try:
        digest = _extract_entry(archive, entry.info, target, limits, budget)
    except _EntryRejected as problem:
        rejected.append(Rejection(entry.name, problem.reason, problem.code, choice.learner_id))
        learner_folder.rmdir()
        return None
    return Submission(choice.learner_id, target, entry.name, digest, choice.late)


def _safe_file_name(name: str) -> str:
    stem = _UNSAFE_ID_CHARACTERS.sub("_", name[: -len(NOTEBOOK_SUFFIX)]).lstrip(".")
    return (stem[: MAX_FILE_NAME_LENGTH] or "notebook") + NOTEBOOK_SUFFIX


def _extract_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limits: ExtractionLimits, budget: _TotalBudget
) -> str:
    """Stream one entry into a new file at target and return the SHA-256 of the bytes actually produced.

    The sizes in the zip's headers can be forged, so every limit is checked against the bytes
    read. The ratio uses the entry's compressed size, which zipfile never reads past.
    """
    name = info.filename
    if info.flag_bits & 0x1:
        raise _EntryRejected(
            "encrypted", f"'{name}' is encrypted, so it cannot be extracted. Ask for a download without a password."
        )
    if info.file_size > limits.max_file_bytes:
        raise _EntryRejected("too_large", _too_large_reason(name, limits))

    digest = hashlib.sha256()
    written = 0
    max_output = limits.max_ratio * max(info.compress_size, 1)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(descriptor, "wb") as output, _open_entry(archive, info) as stream:
            while chunk := _read_entry_chunk(stream, name):
                written += len(chunk)
                if written > limits.max_file_bytes:
                    raise _EntryRejected("too_large", _too_large_reason(name, limits))
                if written > limits.ratio_check_after_bytes and written > max_output:
                    raise _EntryRejected(
                        "compression_ratio",
                        f"'{name}' expands to more than {limits.max_ratio:g} times its compressed size, the mark of "
                        "a zip bomb, so extraction stopped. Ask the learner to resubmit the notebook, or raise the "
                        "limit with --max-ratio if the file is genuine.",
                    )
                budget.spend(len(chunk))
                digest.update(chunk)
                output.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _open_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> io.BufferedIOBase:
    try:
        return archive.open(info)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as error:
        raise _EntryRejected("corrupt_entry", _corrupt_reason(info.filename, error)) from None


def _read_entry_chunk(stream: io.BufferedIOBase, name: str) -> bytes:
    # zipfile reports a bad CRC or damaged data as BadZipFile, zlib.error, lzma.LZMAError, OSError
    # (bz2) or EOFError (data ends early), and an unsupported compression method as NotImplementedError.
    try:
        return stream.read(READ_CHUNK_BYTES)
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, NotImplementedError) as error:
        raise _EntryRejected("corrupt_entry", _corrupt_reason(name, error)) from None


def _corrupt_reason(name: str, error: BaseException) -> str:
    return (
        f"'{name}' could not be extracted ({type(error).__name__}: {error}). Download the submissions again, "
        "and if it still fails, ask the learner to resubmit."
    )


# ---------------------------------------------------------------- CSV manifest


@dataclass
class _ManifestRow:
    line: int
    raw_id: str
    raw_path: str
    learner_id: str = ""
    resolved: Path | None = None


def _collect_manifest(manifest: Path, limits: ExtractionLimits) -> Collection:
    rows = _read_manifest(manifest)
    label = manifest.name
    rejected: list[Rejection] = []

    usable: list[_ManifestRow] = []
    for row in rows:
        entry = f"{label} line {row.line}"
        try:
            row.learner_id = clean_learner_id(row.raw_id)
        except ValueError:
            rejected.append(Rejection(entry, f"{entry}: the learner id is empty. Fill it in and run again.", "empty_id"))
            continue
        if not row.raw_path:
            rejected.append(Rejection(
                entry, f"{entry}: the notebook path is empty. Fill it in and run again.", "missing_file", row.learner_id
            ))
            continue
        path = Path(row.raw_path).expanduser()
        row.resolved = Path(os.path.normpath(path if path.is_absolute() else manifest.parent / path))
        usable.append(row)

    usable = _drop_duplicate_rows(usable, label, rejected)

    submissions = []
    for row in usable:
        entry = f"{label} line {row.line}"
        assert row.resolved is not None
        if _suffix(row.raw_path) != NOTEBOOK_SUFFIX:
            rejected.append(Rejection(
                entry,
                f"{entry}: '{row.raw_path}' is not a .ipynb notebook; ask the learner to resubmit the .ipynb.",
                "not_notebook",
                row.learner_id,
            ))
            continue
        try:
            digest = _hash_regular_file(row.resolved, row.raw_path, limits)
        except _EntryRejected as problem:
            reason = f"{entry}: {problem.reason}"
            if problem.code == "missing_file":
                reason = (
                    f"{entry}: notebook '{row.raw_path}' does not exist (looked for {row.resolved}). "
                    "Fix the path. A relative path starts from the manifest's folder."
                )
            rejected.append(Rejection(entry, reason, problem.code, row.learner_id))
            continue
        submissions.append(Submission(row.learner_id, row.resolved, row.raw_path, digest))
    return Collection(submissions, rejected, LAYOUT_MANIFEST)


def _read_manifest(manifest: Path) -> list[_ManifestRow]:
    """Read the manifest's rows, raising BatchInputError when its encoding or header is unusable."""
    if manifest.stat().st_size > MAX_MANIFEST_BYTES:
        raise BatchInputError(
            f"Manifest {manifest} is larger than {MAX_MANIFEST_BYTES / MIB:g} MiB. List one notebook per line."
        )
    try:
        text = manifest.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BatchInputError(
            f"Manifest {manifest} is not UTF-8 text ({error.reason} at byte {error.start}). Save it as UTF-8 CSV."
        ) from None

    # Spreadsheets in locales with a decimal comma save CSV with semicolons, so the header decides.
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise BatchInputError(f"Manifest {manifest} is empty. Write a header line: learner_id,path.") from None

    columns = [name.strip().lower() for name in header]
    id_column = _find_column(columns, MANIFEST_ID_COLUMNS)
    path_column = _find_column(columns, MANIFEST_PATH_COLUMNS)
    if id_column is None or path_column is None:
        raise BatchInputError(
            f"Manifest {manifest} has the columns {header}, but needs a learner id column "
            f"({' or '.join(MANIFEST_ID_COLUMNS)}) and a notebook column ({' or '.join(MANIFEST_PATH_COLUMNS)}). "
            "Add a header line such as: learner_id,path."
        )

    rows = []
    try:
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            raw_id = values[id_column].strip() if id_column < len(values) else ""
            raw_path = values[path_column].strip() if path_column < len(values) else ""
            rows.append(_ManifestRow(reader.line_num, raw_id, raw_path))
    except csv.Error as error:
        raise BatchInputError(f"Manifest {manifest} is not valid CSV at line {reader.line_num}: {error}.") from None
    return rows


def _find_column(columns: list[str], accepted: tuple[str, ...]) -> int | None:
    for name in accepted:
        if name in columns:
            return columns.index(name)
    return None


def _drop_duplicate_rows(rows: list[_ManifestRow], label: str, rejected: list[Rejection]) -> list[_ManifestRow]:
    """Reject every row whose learner id or notebook also appears on another row, since either could be the right one."""
    lines_by_id: dict[str, list[int]] = defaultdict(list)
    lines_by_path: dict[Path, list[int]] = defaultdict(list)
    for row in rows:
        lines_by_id[row.learner_id].append(row.line)
        lines_by_path[row.resolved].append(row.line)

    unique_rows = []
    for row in rows:
        entry = f"{label} line {row.line}"
        same_id = [line for line in lines_by_id[row.learner_id] if line != row.line]
        same_path = [line for line in lines_by_path[row.resolved] if line != row.line]
        if same_id:
            rejected.append(Rejection(
                entry,
                f"{entry}: learner id '{row.raw_id}' also appears on line(s) {_join_lines(same_id)}, so none of "
                "these lines is graded. Keep one line per learner.",
                "duplicate",
                row.learner_id,
            ))
        elif same_path:
            rejected.append(Rejection(
                entry,
                f"{entry}: notebook '{row.raw_path}' is also listed on line(s) {_join_lines(same_path)} for another "
                "learner, so none of these lines is graded. Give each learner their own notebook.",
                "duplicate",
                row.learner_id,
            ))
        else:
            unique_rows.append(row)
    return unique_rows


def _join_lines(lines: list[int]) -> str:
    return ", ".join(str(line) for line in lines)
