"""Evaluation: metrics against ground truth and the benchmark library."""
