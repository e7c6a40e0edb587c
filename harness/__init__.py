"""adgrade: grades NSL-KDD anomaly-detection notebooks by re-running them and scoring their models."""

from pathlib import Path

__version__ = "0.1.0"

# The repository root holds rubrics/, reference/ and student_templates/ beside the package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
