"""Benchmarks (``python -m bench`` runs the harness in bench/__main__.py)."""
