"""Grading a cohort: batch input, parallel workers, the gradebook store and the reports built from it."""
