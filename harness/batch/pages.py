"""Self-contained HTML pages for a graded cohort: one feedback page per learner and a cohort summary.

Charts are hand-written inline SVG, so each page is one file that needs no network, script or font.
"""

from __future__ import annotations

import hashlib
import html
import logging
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, FiniteFloat, ValidationError, model_validator

from harness.grader import FEEDBACK_VERSION
from harness.result import GradeResult, TestResult
from harness.rubric import Rubric

logger = logging.getLogger(__name__)

# Learner-controlled text (an exception's value inside a message) can be arbitrarily long.
MAX_MESSAGE_CHARS = 2000
HIDDEN_MESSAGE = "Hidden test: its message is not shown."

STATUS_LABELS = {
    "graded": "Graded",
    "execution_error": "Stopped by an error",
    "timeout": "Stopped at the time limit",
    "invalid_submission": "Not a notebook that can be graded",
    "harness_error": "Grader error (not your fault)",
}
STATUS_EXPLANATIONS = {
    "graded": "Every cell ran and every test was scored.",
    "execution_error": "A cell raised an error or the kernel stopped. Tasks completed before that point were "
                       "still scored.",
    "timeout": "The notebook ran past its time limit and was stopped. Tasks completed before that point were "
               "still scored.",
    "invalid_submission": "The file could not be read as a notebook, so nothing was run.",
    "harness_error": "The grader itself failed. Course staff have the details; you do not need to change "
                     "anything because of it.",
}
TEST_STATUS_LABELS = {"passed": "✓ passed", "failed": "✗ failed", "error": "! error", "skipped": "– skipped"}

_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")


# ---- text ----

def clean_text(text: object, limit: int | None = None) -> str:
    """Return text that XML 1.0 and UTF-8 accept: control characters removed, lone surrogates replaced.

    With `limit`, longer text is cut and ends with a note of how much was left out.
    """
    value = _SURROGATES.sub("\ufffd", _CONTROL_CHARACTERS.sub("", str(text)))
    if limit is not None and len(value) > limit:
        value = f"{value[:limit]}… ({len(value) - limit} more characters left out)"
    return value


def _e(text: object, limit: int | None = None) -> str:
    return html.escape(clean_text(text, limit), quote=True)


def feedback_file_name(learner_id: str) -> str:
    """Return the file name of a learner's feedback page, safe to use in a path and a relative link.

    An id made of letters, digits and `._@+-` that does not start with a dot is kept as it is. Any
    other id is reduced to those characters and gets a hash suffix, so two ids never share a file.
    """
    if _SAFE_FILE_NAME.fullmatch(learner_id) and learner_id not in {".", ".."}:
        return f"{learner_id}.html"
    stem = re.sub(r"[^A-Za-z0-9._@+-]+", "_", learner_id).lstrip("._")[:60] or "learner"
    digest = hashlib.sha256(learner_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{stem}-{digest}.html"


def _points(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else "?"


def percent(score: float, max_score: float) -> float | None:
    """Return score as a percentage of max_score, or None when there is no maximum."""
    if max_score <= 0 or not math.isfinite(score) or not math.isfinite(max_score):
        return None
    return 100.0 * score / max_score


def _percent_text(score: float, max_score: float) -> str:
    value = percent(score, max_score)
    return "–" if value is None else f"{value:.1f}%"


def first_sentence(text: str, limit: int = 300) -> str:
    """Return the first sentence of a message: up to the first '.', '!' or '?' followed by white space."""
    sentence = re.split(r"(?<=[.!?])\s+", clean_text(text).strip(), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[:limit] + "…"


def task_title(rubric: Rubric, task_id: str) -> str:
    return next((task.title for task in rubric.tasks if task.id == task_id), task_id)


def task_points(result: GradeResult) -> dict[str, tuple[float, float]]:
    """Return (score, max_score) per task id, from the result's task summaries or else from its tests."""
    if result.tasks:
        return {task.id: (task.score, task.max_score) for task in result.tasks}
    totals: dict[str, tuple[float, float]] = {}
    for test in result.tests:
        score, max_score = totals.get(test.task, (0.0, 0.0))
        totals[test.task] = (score + test.score, max_score + test.max_score)
    return totals


def integrity_notes(result: GradeResult) -> list[str]:
    """Describe changed read-only cells, compatibility rewrites and disagreeing claims in plain sentences.

    Claims about hidden tests are left out, because their numbers would reveal hidden results.
    """
    integrity = result.integrity
    notes = []
    wording = {"edited": "was edited", "missing": "was deleted", "moved": "was moved out of the template's order"}
    for change in integrity.locked_cells:
        notes.append(f"The read-only cell '{change.name}' (id {change.cell_id}) {wording[change.change]}. "
                     "Read-only cells must stay as the template has them: restore it from the template.")
    if integrity.deduction > 0:
        notes.append(f"{integrity.deduction:g} point(s) were deducted for changed read-only cells.")

    for rewrite in integrity.rewrites:
        notes.append(f"Before running your notebook, the grader rewrote cell {rewrite.cell_id} so that it runs on "
                     f"current library versions ({rewrite.rule}): {rewrite.detail}.")

    hidden = {test.name for test in result.tests if test.visibility == "hidden"}
    claims = [claim for claim in integrity.claims if claim.test not in hidden]
    for claim in claims:
        if claim.agrees:
            continue
        if claim.claimed is None:
            notes.append(f"Your notebook stored no usable number for {claim.test}; only the value the grader "
                         f"recomputed from your models ({_number(claim.recomputed)}) counts.")
        elif claim.recomputed is None:
            notes.append(f"Your notebook stored {_number(claim.claimed)} for {claim.test}, but the grader could "
                         "not recompute that value from your models.")
        else:
            notes.append(f"Your notebook stored {_number(claim.claimed)} for {claim.test}, but the grader "
                         f"recomputed {_number(claim.recomputed)} from your models (difference "
                         f"{_number(claim.difference)}). Only the recomputed value counts.")
    agreeing = sum(claim.agrees for claim in claims)
    if agreeing:
        notes.append(f"{agreeing} number(s) your notebook stored matched the values the grader recomputed.")
    return notes


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def other_warnings(result: GradeResult) -> list[str]:
    """Return the result's warnings that the test table and the integrity notes do not already show.

    A warning that repeats a hidden test's message is dropped too, so it cannot leak that message.
    """
    # The grader words each changed read-only cell as "Read-only cell 'NAME' (id ID) ...".
    locked = {f"Read-only cell '{change.name}' (id {change.cell_id})" for change in result.integrity.locked_cells}
    test_messages = {test.message for test in result.tests}
    kept = []
    for warning in result.warnings:
        if warning in test_messages or any(warning.startswith(prefix) for prefix in locked):
            continue
        if result.integrity.deduction > 0 and "point(s) deducted" in warning:
            continue
        kept.append(warning)
    return kept


# ---- feedback.json ----

class RocCurve(BaseModel):
    """A ROC curve: false and true positive rates, from (0, 0) to (1, 1)."""

    fpr: list[FiniteFloat]
    tpr: list[FiniteFloat]
    auroc: FiniteFloat | None = None

    @model_validator(mode="after")
    def _check(self) -> RocCurve:
        if len(self.fpr) != len(self.tpr):
            raise ValueError(f"fpr has {len(self.fpr)} points but tpr has {len(self.tpr)}")
        if len(self.fpr) < 2:
            raise ValueError("a ROC curve needs at least 2 points")
        if any(not 0 <= value <= 1 for value in [*self.fpr, *self.tpr]):
            raise ValueError("fpr and tpr must lie between 0 and 1")
        return self


class ScoreHistogram(BaseModel):
    """Counts of normal and attack rows per bin of a detector's score, and the learner's threshold."""

    bin_edges: list[FiniteFloat]
    normal: list[FiniteFloat]
    attack: list[FiniteFloat]
    threshold: FiniteFloat | None = None
    log_x: bool = False

    @model_validator(mode="after")
    def _check(self) -> ScoreHistogram:
        bins = len(self.bin_edges) - 1
        if bins < 1:
            raise ValueError("bin_edges needs at least 2 values")
        if any(b <= a for a, b in zip(self.bin_edges, self.bin_edges[1:])):
            raise ValueError("bin_edges must increase strictly")
        if len(self.normal) != bins or len(self.attack) != bins:
            raise ValueError(f"{bins} bins, but {len(self.normal)} normal and {len(self.attack)} attack counts")
        if any(count < 0 for count in [*self.normal, *self.attack]):
            raise ValueError("counts must not be negative")
        if not any([*self.normal, *self.attack]):
            raise ValueError("every count is zero, so there is nothing to draw")
        return self


class ConfusionMatrix(BaseModel):
    """The XGBoost classifier's confusion matrix: rows are true classes, columns predicted classes."""

    classes: list[str] = []
    confusion_matrix: list[list[FiniteFloat]]

    @model_validator(mode="after")
    def _check(self) -> ConfusionMatrix:
        size = len(self.confusion_matrix)
        if size == 0 or any(len(row) != size for row in self.confusion_matrix):
            raise ValueError("confusion_matrix must be a non-empty square matrix")
        if self.classes and len(self.classes) != size:
            raise ValueError(f"{len(self.classes)} classes for a {size} x {size} matrix")
        if any(value < 0 for row in self.confusion_matrix for value in row):
            raise ValueError("counts must not be negative")
        return self


@dataclass
class Section:
    """One plot's data from feedback.json, or the sentence that replaces the plot when it is missing."""

    data: Any = None
    reason: str = ""


def _section(feedback: dict, path: tuple[str, ...], model: type[BaseModel], missing: str, label: str,
             learner_id: str) -> Section:
    value: Any = feedback
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return Section(reason=missing)
    empty = _empty_reason(model, value, label)
    if empty:
        return Section(reason=empty)
    try:
        return Section(data=model.model_validate(value))
    except ValidationError as error:
        detail = error.errors()[0]
        where = ".".join(str(part) for part in (*path, *detail["loc"]))
        logger.warning("feedback.json of %s: %s is invalid (%s); the plot is left out", learner_id, where,
                       detail["msg"])
        return Section(reason=f"The grader's data for the {label} is invalid ({where}: {detail['msg']}), "
                              "so it is not drawn.")


def _empty_reason(model: type[BaseModel], value: Any, label: str) -> str:
    """Return why a well-formed but empty section has nothing to draw, or "" when it has data."""
    if not isinstance(value, dict):
        return ""
    # The scorer stores an empty curve when the rows with a finite score do not include both classes.
    if model is RocCurve and value.get("fpr") == [] and value.get("tpr") == []:
        return (f"There is no {label}, because the rows with a finite score did not include both normal and "
                "attack rows.")
    counts = [*value.get("normal", []), *value.get("attack", [])] if model is ScoreHistogram else None
    if counts and all(count == 0 for count in counts):
        return f"There is no {label}, because no row had a finite score."
    return ""


# ---- SVG charts ----

BLUE = "#0072b2"  # Okabe-Ito colours, which readers with colour-vision deficiencies can distinguish
VERMILION = "#d55e00"
GREY = "#6b6b6b"


@dataclass
class _Scale:
    """Maps data values in [lo, hi] to pixels in [start, end], linearly or on a log10 axis."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False

    def _t(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def __call__(self, value: float) -> float:
        lo, hi = self._t(self.lo), self._t(self.hi)
        return self.start + (self._t(value) - lo) / (hi - lo) * (self.end - self.start)

    def ticks(self) -> list[float]:
        if self.log:
            first = math.ceil(math.log10(self.lo) - 1e-9)
            last = math.floor(math.log10(self.hi) + 1e-9)
            if last > first:
                step = max(1, math.ceil((last - first + 1) / 8))
                return [10.0 ** k for k in range(first, last + 1, step)]
        return _nice_ticks(self.lo, self.hi)


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if raw <= m * magnitude)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12))
        k += 1
    return ticks


def _tick_text(value: float) -> str:
    text = f"{value:.4g}"
    return re.sub(r"e([-+])0*(\d)", lambda m: f"e{m.group(1).replace('+', '')}{m.group(2)}", text)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _svg(width: float, height: float, label: str, body: list[str]) -> str:
    return (f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_f(width)} {_f(height)}" '
            f'width="{_f(width)}" height="{_f(height)}" role="img" aria-label="{_e(label)}">'
            f"<title>{_e(label)}</title>{''.join(body)}</svg>")


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{extra}>{_e(text)}</text>'


def _axes(x: _Scale, y: _Scale, x_label: str, y_label: str) -> list[str]:
    """Draw grid lines, tick labels, the frame and the axis labels of a plot area."""
    left, right, bottom, top = x.start, x.end, y.start, y.end
    parts = ['<g class="axes">']
    for tick in x.ticks():
        px = x(tick)
        parts.append(f'<line x1="{_f(px)}" y1="{_f(top)}" x2="{_f(px)}" y2="{_f(bottom)}" stroke="#e3e3e3"/>')
        parts.append(_text(px, bottom + 15, _tick_text(tick), "middle"))
    for tick in y.ticks():
        py = y(tick)
        parts.append(f'<line x1="{_f(left)}" y1="{_f(py)}" x2="{_f(right)}" y2="{_f(py)}" stroke="#e3e3e3"/>')
        parts.append(_text(left - 5, py + 4, _tick_text(tick), "end"))
    parts.append(f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(right - left)}" height="{_f(bottom - top)}" '
                 'fill="none" stroke="#333"/>')
    parts.append(_text((left + right) / 2, bottom + 34, x_label, "middle", ' class="axis-label"'))
    middle = (top + bottom) / 2
    parts.append(_text(14, middle, y_label, "middle", f' class="axis-label" transform="rotate(-90 14 {_f(middle)})"'))
    parts.append("</g>")
    return parts


def _legend(x: float, y: float, items: list[tuple[str, str, str]]) -> list[str]:
    """Draw legend rows of (colour, dash pattern or '', label) from (x, y) downwards."""
    parts = ['<g class="legend">']
    for index, (colour, dash, label) in enumerate(items):
        row = y + index * 16
        dash_attribute = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{_f(x)}" y1="{_f(row - 4)}" x2="{_f(x + 22)}" y2="{_f(row - 4)}" '
                     f'stroke="{colour}" stroke-width="2.5"{dash_attribute}/>')
        parts.append(_text(x + 28, row, label))
    parts.append("</g>")
    return parts


def roc_chart(curve: RocCurve, reference: RocCurve | None, title: str) -> str:
    """Draw the learner's ROC curve over the reference solution's, with the chance diagonal."""
    width, height = 400.0, 380.0
    x = _Scale(0, 1, 56, width - 14)
    y = _Scale(0, 1, height - 50, 26)
    parts = [_text(width / 2, 16, title, "middle", ' class="chart-title"')]
    parts += _axes(x, y, "False positive rate", "True positive rate")

    parts.append('<g class="data">')
    parts.append(f'<line x1="{_f(x(0))}" y1="{_f(y(0))}" x2="{_f(x(1))}" y2="{_f(y(1))}" stroke="#aaa" '
                 'stroke-dasharray="3 3"/>')
    legend = []
    if reference is not None:
        parts.append(_polyline(reference, x, y, GREY, ' stroke-dasharray="7 4"'))
        legend.append((GREY, "7 4", f"Reference{_auroc_text(reference)}"))
    parts.append(_polyline(curve, x, y, BLUE, ""))
    parts.append("</g>")
    legend.insert(0, (BLUE, "", f"Your model{_auroc_text(curve)}"))
    legend.append(("#aaa", "3 3", "Chance"))
    parts += _legend(x(0.4), y(0) - 12 - 16 * (len(legend) - 1), legend)
    return _svg(width, height, title, parts)


def _auroc_text(curve: RocCurve) -> str:
    return "" if curve.auroc is None else f" (AUROC {curve.auroc:.3f})"


def _polyline(curve: RocCurve, x: _Scale, y: _Scale, colour: str, extra: str) -> str:
    points = " ".join(f"{_f(x(fpr))},{_f(y(tpr))}" for fpr, tpr in zip(curve.fpr, curve.tpr))
    return f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"{extra}/>'


def histogram_chart(histogram: ScoreHistogram, x_label: str, title: str) -> tuple[str, list[str]]:
    """Draw the share of normal and of attack rows per bin, with the threshold marked; return (svg, notes).

    Each class is scaled to its own total, so a small class stays visible beside a large one.
    """
    notes = []
    edges = histogram.bin_edges
    log = histogram.log_x and edges[0] > 0
    if histogram.log_x and not log:
        notes.append("The bin edges include values of zero or below, so the x axis is linear, not logarithmic.")

    totals = {"normal": sum(histogram.normal), "attack": sum(histogram.attack)}
    shares = {name: [count / totals[name] if totals[name] else 0.0 for count in counts]
              for name, counts in (("normal", histogram.normal), ("attack", histogram.attack))}
    top_share = max([*shares["normal"], *shares["attack"], 0.0]) or 1.0

    threshold = histogram.threshold
    legend = [(BLUE, "", f"Normal rows ({totals['normal']:g})"),
              (VERMILION, "", f"Attack rows ({totals['attack']:g})")]
    marked = threshold is not None and edges[0] <= threshold <= edges[-1]
    if marked:
        legend.append(("#000", "5 3", f"Your threshold ({threshold:.4g})"))
    elif threshold is not None:
        notes.append(f"Your threshold {threshold:.4g} lies outside the plotted range "
                     f"({edges[0]:.4g} to {edges[-1]:.4g}), so it is not marked.")

    # The legend sits between the title and the plot area, where it cannot cover the bars.
    legend_top = 40.0
    width, height = 440.0, 300.0 + 16 * len(legend)
    x = _Scale(edges[0], edges[-1], 56, width - 14, log=log)
    y = _Scale(0, top_share * 1.1, height - 50, legend_top + 16 * len(legend))
    parts = [_text(width / 2, 16, title, "middle", ' class="chart-title"')]
    parts += _legend(60, legend_top, legend)
    parts += _axes(x, y, x_label + (" (log scale)" if log else ""), "Share of rows")

    parts.append('<g class="data">')
    for name, colour in (("normal", BLUE), ("attack", VERMILION)):
        if not totals[name]:
            notes.append(f"No {name} rows were recorded.")
            continue
        outline = [f"M{_f(x(edges[0]))},{_f(y(0))}"]
        for left, right, share in zip(edges, edges[1:], shares[name]):
            outline.append(f"L{_f(x(left))},{_f(y(share))} L{_f(x(right))},{_f(y(share))}")
        outline.append(f"L{_f(x(edges[-1]))},{_f(y(0))} Z")
        parts.append(f'<path d="{" ".join(outline)}" fill="{colour}" fill-opacity="0.3" stroke="{colour}" '
                     'stroke-width="1.5"/>')
    if marked:
        px = x(threshold)
        parts.append(f'<line x1="{_f(px)}" y1="{_f(y.end)}" x2="{_f(px)}" y2="{_f(y.start)}" stroke="#000" '
                     'stroke-width="2" stroke-dasharray="5 3"/>')
    parts.append("</g>")
    return _svg(width, height, title, parts), notes


def confusion_chart(matrix: ConfusionMatrix, title: str) -> str:
    """Draw the confusion matrix as a grid shaded by each true class's share, with the counts written in."""
    counts = matrix.confusion_matrix
    size = len(counts)
    names = [_short(name) for name in matrix.classes] or [str(index) for index in range(size)]
    cell = max(12.0, min(44.0, 460.0 / size))
    label_width = 12 + 6.5 * max(len(name) for name in names)
    left, top = 24 + label_width, 30.0
    grid = cell * size
    width = left + grid + 16
    height = top + grid + label_width * 0.75 + 34

    parts = [_text(width / 2, 16, title, "middle", ' class="chart-title"'), '<g class="data">']
    for row, values in enumerate(counts):
        total = sum(values)
        for column, value in enumerate(values):
            share = value / total if total else 0.0
            fill = _blend("#ffffff", "#08306b", share)
            px, py = left + column * cell, top + row * cell
            parts.append(f'<rect x="{_f(px)}" y="{_f(py)}" width="{_f(cell)}" height="{_f(cell)}" fill="{fill}" '
                         'stroke="#d0d0d0" stroke-width="0.5"/>')
            if value and cell >= 16:
                colour = "#fff" if share > 0.5 else "#111"
                size_px = min(11.0, cell * 0.42)
                parts.append(_text(px + cell / 2, py + cell / 2 + size_px * 0.35, _count_text(value), "middle",
                                   f' style="font-size:{_f(size_px)}px;fill:{colour}"'))
    parts.append("</g>")

    font = f' style="font-size:{_f(min(11.0, max(8.0, cell * 0.6)))}px"'
    for index, name in enumerate(names):
        middle = top + index * cell + cell / 2
        parts.append(_text(left - 5, middle + 4, name, "end", font))
        centre = left + index * cell + cell / 2
        base = top + grid + 8
        parts.append(_text(centre, base, name, "end", f'{font} transform="rotate(-45 {_f(centre)} {_f(base)})"'))
    parts.append(_text(left + grid / 2, height - 6, "Predicted class", "middle", ' class="axis-label"'))
    parts.append(_text(12, top + grid / 2, "True class", "middle",
                       f' class="axis-label" transform="rotate(-90 12 {_f(top + grid / 2)})"'))
    return _svg(width, height, title, parts)


def _short(name: str, limit: int = 20) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"


def _count_text(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:g}"


def _blend(low: str, high: str, share: float) -> str:
    a = [int(low[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(high[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(p + (q - p) * share):02x}" for p, q in zip(a, b))


def score_histogram_chart(percents: list[float], title: str) -> str:
    """Draw how many submissions scored in each tenth of the maximum score."""
    bins = [0] * 10
    for value in percents:
        bins[min(9, max(0, int(value // 10)))] += 1
    width, height = 460.0, 300.0
    x = _Scale(0, 100, 56, width - 14)
    y = _Scale(0, max(bins) * 1.15 or 1, height - 50, 26)
    parts = [_text(width / 2, 16, title, "middle", ' class="chart-title"')]
    parts += _axes(x, y, "Score (% of the maximum)", "Submissions")
    parts.append('<g class="data">')
    for index, count in enumerate(bins):
        if not count:
            continue
        px, bar_width = x(index * 10) + 2, x(10) - x(0) - 4
        parts.append(f'<rect x="{_f(px)}" y="{_f(y(count))}" width="{_f(bar_width)}" '
                     f'height="{_f(y(0) - y(count))}" fill="{BLUE}"/>')
        parts.append(_text(px + bar_width / 2, y(count) - 4, str(count), "middle"))
    parts.append("</g>")
    return _svg(width, height, title, parts)


def pass_rate_chart(rows: list[tuple[str, int, int]], title: str) -> str:
    """Draw one horizontal bar per test: the share of scored submissions that passed it."""
    label_width = 12 + 6.4 * max((len(name) for name, _, _ in rows), default=4)
    left, bar_space, row_height = label_width + 8, 320.0, 20.0
    width = left + bar_space + 110
    height = 40 + row_height * len(rows) + 34
    x = _Scale(0, 100, left, left + bar_space)
    parts = [_text(width / 2, 16, title, "middle", ' class="chart-title"'), '<g class="data">']
    for index, (name, passed, scored) in enumerate(rows):
        top = 30 + index * row_height
        rate = 100.0 * passed / scored if scored else 0.0
        parts.append(_text(left - 6, top + 13, name, "end"))
        parts.append(f'<rect x="{_f(left)}" y="{_f(top + 3)}" width="{_f(bar_space)}" height="{_f(row_height - 6)}" '
                     'fill="#eee"/>')
        if rate > 0:
            parts.append(f'<rect x="{_f(left)}" y="{_f(top + 3)}" width="{_f(x(rate) - left)}" '
                         f'height="{_f(row_height - 6)}" fill="{BLUE}"/>')
        parts.append(_text(left + bar_space + 6, top + 13, f"{rate:.0f}% ({passed}/{scored})"))
    parts.append("</g>")
    axis_y = 30 + row_height * len(rows) + 14
    for tick in (0, 25, 50, 75, 100):
        parts.append(_text(x(tick), axis_y, f"{tick}%", "middle"))
    parts.append(_text(x(50), axis_y + 16, "Passed (% of scored submissions)", "middle", ' class="axis-label"'))
    return _svg(width, height, title, parts)


# ---- page layout ----

STYLE = """
:root { color-scheme: light; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1a1a1a;
       background: #fff; max-width: 66rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #bbb; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.meta { color: #444; margin: 0; }
.score { font-size: 3rem; font-weight: 700; line-height: 1.1; margin: .6rem 0 0; }
.score small { font-size: 1.6rem; font-weight: 600; color: #333; }
.status { font-size: 1.5rem; font-weight: 600; margin: .2rem 0; }
.status-good { color: #1b5e20; } .status-bad { color: #a30000; } .status-warn { color: #7a4100; }
.run-message { border-left: 4px solid #7a4100; padding: .4rem .8rem; background: #fff8ec; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #d6d6d6; vertical-align: top; }
th { border-bottom: 2px solid #999; }
.num { text-align: right; white-space: nowrap; }
.passed { color: #1b5e20; } .failed { color: #a30000; } .error { color: #5b1a8a; } .skipped { color: #555; }
.status-cell { white-space: nowrap; font-weight: 600; }
.message, .hint { white-space: pre-wrap; overflow-wrap: anywhere; }
.description { display: block; color: #555; font-size: .85rem; }
.hidden-note { color: #555; font-style: italic; }
.plots { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
figure { margin: 0; break-inside: avoid; }
figcaption { font-size: .9rem; color: #333; max-width: 28rem; }
svg.plot { max-width: 100%; height: auto; display: block; }
svg.plot text { font: 11px system-ui, "DejaVu Sans", sans-serif; fill: #222; }
svg.plot .chart-title { font-size: 13px; font-weight: 600; }
svg.plot .axis-label { font-size: 12px; }
.no-plot { font-style: italic; color: #333; }
footer { margin-top: 2.5rem; color: #555; font-size: .85rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  a { color: inherit; }
  h2, h3 { break-after: avoid; }
  tr, figure { break-inside: avoid; }
  .run-message { background: none; }
}
"""
# No script, no external resource: the policy blocks anything the escaping might have missed.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _page(title: str, body: list[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        *body,
        "</body>",
        "</html>",
        "",
    ])


def _status_class(status: str) -> str:
    return {"graded": "status-good", "harness_error": "status-warn"}.get(status, "status-bad")


def _figure(svg: str, caption: str, notes: Sequence[str] = ()) -> str:
    text = " ".join([caption, *notes]).strip()
    return f"<figure>{svg}<figcaption>{_e(text)}</figcaption></figure>"


def _no_plot(reason: str) -> str:
    return f'<p class="no-plot">{_e(reason)}</p>'


# ---- feedback page ----

def render_feedback_page(learner_id: str, result: GradeResult, feedback: dict | None, rubric: Rubric) -> str:
    """Return one learner's feedback page: score, run message, tests, hints, integrity notes and plots."""
    title = f"Feedback for {learner_id}: {_points(result.score)} / {_points(result.max_score)} points"
    body = ["<header>", f"<h1>{_e(rubric.title)}</h1>",
            f'<p class="meta">Learner {_e(learner_id)} · submission {_e(result.submission)} · rubric '
            f"{_e(rubric.name)} {_e(rubric.version)}</p>",
            f'<p class="score" id="score">{_e(_points(result.score))} / {_e(_points(result.max_score))} points '
            f"<small>{_e(_percent_text(result.score, result.max_score))}</small></p>",
            f'<p class="status {_status_class(result.status)}" id="status">'
            f"{_e(STATUS_LABELS.get(result.status, result.status))}</p>",
            f"<p>{_e(STATUS_EXPLANATIONS.get(result.status, ''))}</p>", "</header>"]
    if result.message:
        body.append(f'<p class="run-message message" id="run-message">{_e(result.message, MAX_MESSAGE_CHARS)}</p>')
    if result.hidden_tests:
        body.append(f"<p>{result.hidden_tests} hidden test(s) also count toward the grade. They were not run here, "
                    "so a full score on this page does not guarantee full marks.</p>")

    body += _task_section(result, rubric)
    body += _test_section(result, rubric)
    body += _integrity_section(result)
    body += _plot_section(learner_id, result, feedback, rubric)
    body.append(f"<footer>Graded by adgrade {_e(result.environment.get('harness', ''))}"
                f"{_e(_seconds_text(result))}. Course staff hold the full record (result.json).</footer>")
    return _page(title, body)


def _seconds_text(result: GradeResult) -> str:
    total = result.timings.get("total")
    return f" in {total:.0f} s" if isinstance(total, (int, float)) and math.isfinite(total) else ""


def _task_section(result: GradeResult, rubric: Rubric) -> list[str]:
    points = task_points(result)
    if not points:
        return []
    hints = {task.id: task.hint for task in result.tasks} or {task.id: task.hint for task in rubric.tasks}
    parts = ['<section id="tasks">', "<h2>Tasks</h2>", "<table>",
             '<thead><tr><th>Task</th><th class="num">Points</th><th>What to look at</th></tr></thead><tbody>']
    for task_id, (score, max_score) in points.items():
        lost = score < max_score
        hint = hints.get(task_id, "") if lost else ""
        advice = f'<span class="hint">Hint: {_e(hint)}</span>' if hint else ("Points lost: see the tests below."
                                                                              if lost else "Full marks.")
        parts.append(f"<tr><td>{_e(task_title(rubric, task_id))}</td>"
                     f'<td class="num">{_e(_points(score))} / {_e(_points(max_score))}</td><td>{advice}</td></tr>')
    parts += ["</tbody></table>", "</section>"]
    return parts


def _test_section(result: GradeResult, rubric: Rubric) -> list[str]:
    if not result.tests:
        return ['<section id="tests">', "<h2>Tests</h2>",
                "<p>No test was scored, because grading stopped before the tests could run.</p>", "</section>"]
    parts = ['<section id="tests">', "<h2>Tests</h2>", "<table>",
             '<thead><tr><th>Task</th><th>Test</th><th class="num">Points</th><th>Result</th><th>Message</th>'
             "</tr></thead><tbody>"]
    for test in result.tests:
        parts.append(_test_row(test, rubric))
    parts += ["</tbody></table>", "</section>"]
    return parts


def _test_row(test: TestResult, rubric: Rubric) -> str:
    status = test.status
    if test.visibility == "hidden":
        name = f"{_e(test.name)} (hidden)"
        message = f'<span class="hidden-note">{_e(HIDDEN_MESSAGE)}</span>'
    else:
        description = f'<span class="description">{_e(test.description)}</span>' if test.description else ""
        name = f"{_e(test.name)}{description}"
        message = f'<span class="message">{_e(test.message, MAX_MESSAGE_CHARS)}</span>'
    return (f'<tr class="test test-{_e(status)}"><td>{_e(task_title(rubric, test.task))}</td><td>{name}</td>'
            f'<td class="num">{_e(_points(test.score))} / {_e(_points(test.max_score))}</td>'
            f'<td class="status-cell {_e(status)}">{_e(TEST_STATUS_LABELS.get(status, status))}</td>'
            f"<td>{message}</td></tr>")


def _integrity_section(result: GradeResult) -> list[str]:
    notes = integrity_notes(result)
    warnings = other_warnings(result)
    if not notes and not warnings:
        return []
    parts = ['<section id="integrity">', "<h2>Notes on your notebook</h2>", "<ul>"]
    parts += [f"<li>{_e(note, MAX_MESSAGE_CHARS)}</li>" for note in [*notes, *warnings]]
    parts += ["</ul>", "</section>"]
    return parts


def _plot_section(learner_id: str, result: GradeResult, feedback: dict | None, rubric: Rubric) -> list[str]:
    parts = ['<section id="plots">', "<h2>Plots</h2>"]
    problem = _feedback_problem(result, feedback)
    if problem:
        parts += [_no_plot(problem), "</section>"]
        return parts

    assert feedback is not None
    split = feedback.get("evaluation_split")
    if split == "course":
        parts.append("<p>These plots use the course's test split, rebuilt through your features and scaler.</p>")
    elif split == "learner":
        parts.append("<p>These plots use your own test split.</p>")

    def section(path: tuple[str, ...], model: type[BaseModel], task_id: str, label: str) -> Section:
        missing = f"The {task_title(rubric, task_id)} task did not finish, so there is nothing to plot."
        return _section(feedback, path, model, missing, label, learner_id)

    parts += _detector_plots(
        "Autoencoder",
        roc=section(("autoencoder", "roc"), RocCurve, "autoencoder", "autoencoder ROC curve"),
        reference=section(("reference", "autoencoder_roc"), RocCurve, "autoencoder", "reference ROC curve"),
        histogram=section(("autoencoder", "errors"), ScoreHistogram, "autoencoder",
                          "reconstruction-error histogram"),
        x_label="Reconstruction error",
        histogram_title="Reconstruction errors of normal and attack rows",
    )
    parts += _detector_plots(
        "GAN",
        roc=section(("gan", "roc"), RocCurve, "gan", "GAN ROC curve"),
        reference=section(("reference", "gan_roc"), RocCurve, "gan", "reference ROC curve"),
        histogram=section(("gan", "scores"), ScoreHistogram, "gan", "GAN score histogram"),
        x_label="Anomaly score 1 - D(x)",
        histogram_title="GAN scores of normal and attack rows",
    )

    matrix = section(("xgboost",), ConfusionMatrix, "xgboost", "confusion matrix")
    parts += ["<h3>XGBoost classifier</h3>", '<div class="plots">']
    if matrix.data is None:
        parts.append(_no_plot(matrix.reason))
    else:
        parts.append(_figure(confusion_chart(matrix.data, "Confusion matrix"),
                             "Rows are true classes and columns predicted classes. Each row is shaded by its share "
                             "of that class's rows, so the diagonal is dark when a class is mostly right."))
    parts += ["</div>", "</section>"]
    return parts


def _feedback_problem(result: GradeResult, feedback: dict | None) -> str:
    if feedback is None:
        if result.status == "invalid_submission":
            return "The file is not a notebook that could be run, so there is nothing to plot."
        if result.status == "harness_error":
            return "The grader failed before it could score your models, so there is nothing to plot."
        return "The grader recorded no plot data for this submission, so there is nothing to plot."
    if not isinstance(feedback, dict) or feedback.get("version") != FEEDBACK_VERSION:
        version = feedback.get("version") if isinstance(feedback, dict) else None
        logger.warning("feedback data has version %r, expected %d; the plots are left out", version,
                       FEEDBACK_VERSION)
        return (f"The grader's plot data has version {version!r}, which this page cannot read, "
                "so there is nothing to plot.")
    return ""


def _detector_plots(name: str, roc: Section, reference: Section, histogram: Section, x_label: str,
                    histogram_title: str) -> list[str]:
    parts = [f"<h3>{_e(name)} detector</h3>", '<div class="plots">']
    if roc.data is None:
        parts.append(_no_plot(roc.reason))
    else:
        caption = "Your ROC curve beside the reference solution's."
        if reference.data is None:
            caption = "Your ROC curve. The reference solution's curve is not available."
        parts.append(_figure(roc_chart(roc.data, reference.data, f"{name}: ROC curve"), caption))
    if histogram.data is None:
        if histogram.reason != roc.reason:
            parts.append(_no_plot(histogram.reason))
    else:
        svg, notes = histogram_chart(histogram.data, x_label, histogram_title)
        parts.append(_figure(svg, "Each class is scaled to its own number of rows. Rows right of the threshold "
                                  "are flagged as attacks.", notes))
    parts.append("</div>")
    return parts


# ---- cohort summary page ----

@dataclass
class SummaryRow:
    """A learner's row on the cohort page."""

    learner_id: str
    result: GradeResult
    link: str


def render_summary_page(rows: list[SummaryRow], rubric: Rubric) -> str:
    """Return the cohort page: statuses, score distribution, pass rates, common failures and learners."""
    rows = sorted(rows, key=lambda row: row.learner_id)
    body = ["<header>", f"<h1>{_e(rubric.title)}: cohort summary</h1>",
            f'<p class="meta">Rubric {_e(rubric.name)} {_e(rubric.version)} · {len(rows)} submission(s) · '
            f"maximum {_e(_points(rubric.max_score))} points</p>", "</header>"]
    if not rows:
        body.append("<p>No submissions were graded.</p>")
        return _page(f"{rubric.title}: cohort summary", body)

    body += _status_section(rows)
    body += _score_section(rows)
    body += _pass_rate_section(rows, rubric)
    body += _failure_section(rows)
    body += _learner_section(rows)
    return _page(f"{rubric.title}: cohort summary", body)


def _status_section(rows: list[SummaryRow]) -> list[str]:
    counts = Counter(row.result.status for row in rows)
    parts = ['<section id="statuses">', "<h2>Submissions by status</h2>", "<table>",
             '<thead><tr><th>Status</th><th>Meaning</th><th class="num">Submissions</th></tr></thead><tbody>']
    for status, label in STATUS_LABELS.items():
        parts.append(f'<tr><td>{_e(status)}</td><td>{_e(label)}</td><td class="num" data-status="{_e(status)}">'
                     f"{counts.get(status, 0)}</td></tr>")
    parts += ["</tbody></table>", "</section>"]
    return parts


def _score_section(rows: list[SummaryRow]) -> list[str]:
    scores = [row.result.score for row in rows if math.isfinite(row.result.score)]
    percents = [value for row in rows if (value := percent(row.result.score, row.result.max_score)) is not None]
    parts = ['<section id="scores">', "<h2>Scores</h2>"]
    if scores:
        parts.append(f'<p>Mean <strong id="mean-score">{statistics.mean(scores):.2f}</strong> points, median '
                     f'<strong id="median-score">{statistics.median(scores):g}</strong> points, over all '
                     f"{len(scores)} submissions, including those that stopped early.</p>")
    if percents:
        parts += ['<div class="plots">',
                  _figure(score_histogram_chart(percents, "Score distribution"),
                          "Submissions per tenth of the maximum score; a full score counts in the top bar."),
                  "</div>"]
    parts.append("</section>")
    return parts


def _pass_rate_section(rows: list[SummaryRow], rubric: Rubric) -> list[str]:
    order = [test.name for test in rubric.tests]
    visibility = {test.name: test.visibility for test in rubric.tests}

    passed: Counter[str] = Counter()
    scored: Counter[str] = Counter()
    for row in rows:
        for test in row.result.tests:
            scored[test.name] += 1
            passed[test.name] += test.status == "passed"
            visibility.setdefault(test.name, test.visibility)
    names = [name for name in order if scored[name]] + sorted(set(scored) - set(order))

    parts = ['<section id="pass-rates">', "<h2>Pass rate per test</h2>"]
    if not names:
        parts += ["<p>No submission reached scoring.</p>", "</section>"]
        return parts
    unscored = sum(1 for row in rows if not row.result.tests)
    if unscored:
        parts.append(f"<p>{unscored} submission(s) never reached scoring and are not counted here.</p>")

    parts += ["<table>", '<thead><tr><th>Test</th><th class="num">Passed</th><th class="num">Scored</th>'
              '<th class="num">Pass rate</th></tr></thead><tbody>']
    chart_rows = []
    for name in names:
        label = name + (" (hidden)" if visibility.get(name) == "hidden" else "")
        rate = 100.0 * passed[name] / scored[name]
        parts.append(f'<tr data-test="{_e(name)}"><td>{_e(label)}</td><td class="num">{passed[name]}</td>'
                     f'<td class="num">{scored[name]}</td><td class="num">{rate:.0f}%</td></tr>')
        chart_rows.append((label, passed[name], scored[name]))

    parts += ["</tbody></table>", '<div class="plots">',
              _figure(pass_rate_chart(chart_rows, "Pass rate per test"), "Share of scored submissions that passed "
                                                                         "each test."),
              "</div>", "</section>"]
    return parts


def failure_groups(rows: list[SummaryRow]) -> list[tuple[str, str, list[str]]]:
    """Group failure messages by test and first sentence, most common first: (test, sentence, learner ids).

    Numbers are ignored when grouping, because they differ between learners; the sentence shown is the
    first learner's. Messages of runs that stopped early are grouped under "(run: STATUS)".
    """
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        result = row.result
        if result.status != "graded" and result.message:
            sentence = first_sentence(result.message)
            groups[(f"(run: {result.status})", _without_numbers(sentence))].append((row.learner_id, sentence))
        for test in result.tests:
            if test.status in ("failed", "error") and test.message:
                sentence = first_sentence(test.message)
                groups[(test.name, _without_numbers(sentence))].append((row.learner_id, sentence))
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [(test, members[0][1], [learner for learner, _ in members]) for (test, _), members in ordered]


def _without_numbers(sentence: str) -> str:
    return re.sub(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", "#", sentence)


def _failure_section(rows: list[SummaryRow], limit: int = 15) -> list[str]:
    groups = failure_groups(rows)
    parts = ['<section id="failures">', "<h2>Most common failure messages</h2>"]
    if not groups:
        parts += ["<p>No test failed.</p>", "</section>"]
        return parts
    parts += ["<p>Grouped by test and first sentence; numbers are ignored when grouping, and the sentence shown "
              "is one learner's.</p>", "<table>",
              '<thead><tr><th>Test</th><th>Message</th><th class="num">Submissions</th><th>Learners</th></tr>'
              "</thead><tbody>"]
    for test, sentence, learners in groups[:limit]:
        shown = ", ".join(learners[:5]) + (f" and {len(learners) - 5} more" if len(learners) > 5 else "")
        parts.append(f'<tr class="failure-group"><td>{_e(test)}</td><td class="message">{_e(sentence)}</td>'
                     f'<td class="num">{len(learners)}</td><td>{_e(shown)}</td></tr>')
    parts += ["</tbody></table>"]
    if len(groups) > limit:
        parts.append(f"<p>{len(groups) - limit} less common message group(s) are not listed.</p>")
    parts.append("</section>")
    return parts


def _learner_section(rows: list[SummaryRow]) -> list[str]:
    parts = ['<section id="learners">', "<h2>Learners</h2>", "<table>",
             '<thead><tr><th>Learner</th><th>Status</th><th class="num">Score</th><th class="num">Percent</th>'
             "<th>Tests not passed</th></tr></thead><tbody>"]
    for row in rows:
        result = row.result
        not_passed = ", ".join(test.name for test in result.tests if test.status != "passed") or "–"
        parts.append(f'<tr><td><a href="{_e(row.link)}">{_e(row.learner_id)}</a></td><td>{_e(result.status)}</td>'
                     f'<td class="num">{_e(_points(result.score))} / {_e(_points(result.max_score))}</td>'
                     f'<td class="num">{_e(_percent_text(result.score, result.max_score))}</td>'
                     f"<td>{_e(not_passed)}</td></tr>")
    parts += ["</tbody></table>", "</section>"]
    return parts
