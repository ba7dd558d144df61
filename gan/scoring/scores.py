"""`Scores`, what the digit judges say about a batch of generated digits, as one typed record: measured by
`gan.scoring.metrics`, saved with each scored epoch of a run's history, and read back checked.

A run's history is untrusted: `Scores.from_dict` accepts only what `to_dict` writes (numbers where numbers go, ten
per-digit values, text warnings) and raises `DamagedScores` otherwise, so every reader gets either whole scores or
none. Fields added over time are optional, so the scores of older runs still load.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

DIGITS = 10  # one histogram bar and one per-digit FID for each digit 0-9


class DamagedScores(ValueError):
    """Saved scores that are not what `Scores.to_dict` writes."""


@dataclass(frozen=True)
class Scores:
    """How a batch of generated images looks to the judges; JSON-friendly through to_dict / from_dict.

    The fields from `fid_second` on are None in records saved before the second judge existed, and when it is
    not given."""

    fid: float
    classifier_score: float
    histogram: tuple[float, ...]  # fraction of samples the judge reads as each digit 0-9
    classes_covered: int  # digits with at least 1% of the samples
    mean_confidence: float
    label_agreement: float | None  # conditional models only
    warnings: tuple[str, ...]
    fid_second: float | None = None  # FID on the second judge's features
    precision: float | None = None  # the nearest-neighbour scores, on the first judge's features
    recall: float | None = None
    density: float | None = None
    coverage: float | None = None
    per_class_fid: tuple[float | None, ...] | None = None  # conditional models: FID of each digit asked for

    def to_dict(self) -> dict[str, Any]:
        values = {**asdict(self), "histogram": list(self.histogram), "warnings": list(self.warnings)}
        values["per_class_fid"] = None if self.per_class_fid is None else list(self.per_class_fid)
        return values

    @classmethod
    def from_dict(cls, values: Any) -> Scores:
        """Scores read back from a file; raises DamagedScores unless they are what `to_dict` writes."""
        if not isinstance(values, dict):
            raise DamagedScores("scores are not a JSON object")
        covered, warnings = values.get("classes_covered"), values.get("warnings")
        if not _is_whole(covered) or not 0 <= covered <= DIGITS:
            raise DamagedScores(f"classes_covered is not a whole number from 0 to {DIGITS}")
        if not isinstance(warnings, list) or not all(isinstance(warning, str) for warning in warnings):
            raise DamagedScores("warnings are not a list of text")
        per_class = values.get("per_class_fid")
        return cls(
            fid=_number(values, "fid"),
            classifier_score=_number(values, "classifier_score"),
            histogram=_per_digit(values.get("histogram"), "histogram", optional_items=False),
            classes_covered=covered,
            mean_confidence=_number(values, "mean_confidence"),
            label_agreement=_number(values, "label_agreement", optional=True),
            warnings=tuple(warnings),
            fid_second=_number(values, "fid_second", optional=True),
            precision=_number(values, "precision", optional=True),
            recall=_number(values, "recall", optional=True),
            density=_number(values, "density", optional=True),
            coverage=_number(values, "coverage", optional=True),
            per_class_fid=None if per_class is None else _per_digit(per_class, "per_class_fid", optional_items=True),
        )


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(values: dict[str, Any], name: str, optional: bool = False) -> float | None:
    value = values.get(name)
    if value is None and optional:
        return None
    if not _is_number(value):
        raise DamagedScores(f"{name} is not a finite number")
    return float(value)


def _per_digit(values: Any, name: str, optional_items: bool) -> tuple[Any, ...]:
    """One number for each digit (or None, where `optional_items`)."""
    if not isinstance(values, list) or len(values) != DIGITS:
        raise DamagedScores(f"{name} is not a list of {DIGITS} values")
    if not all(_is_number(value) or (optional_items and value is None) for value in values):
        raise DamagedScores(f"{name} holds something other than numbers")
    return tuple(None if value is None else float(value) for value in values)
