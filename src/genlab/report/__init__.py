"""Figures and HTML reports, built from run directories on disk."""
