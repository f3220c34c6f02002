"""Metrics: classification, calibration, sample quality, clustering, OOD detection."""
