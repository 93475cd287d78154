"""Redrawing: pins and locks, the version store, plan differences."""
