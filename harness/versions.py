"""Installed versions of the course stack, recorded with every result and every reference run."""

from __future__ import annotations

import importlib.metadata

COURSE_PACKAGES = ("numpy", "pandas", "scikit-learn", "xgboost", "tensorflow", "keras")


def package_versions(packages: tuple[str, ...] = COURSE_PACKAGES) -> dict[str, str | None]:
    """Return each package's installed version, or None where it is not installed."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions
