"""Reconciler, verifier, planner and the daemon-side Engine the API talks to."""
