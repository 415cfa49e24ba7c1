"""Metrics, plots and reports for runs and exported artifacts."""
