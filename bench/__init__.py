"""Benchmarks of the enforcer and its lab; ``python -m bench.run`` runs them all."""
