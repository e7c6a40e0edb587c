"""Reference implementations of the assessment's three tasks, used by the solution and the calibration run."""
