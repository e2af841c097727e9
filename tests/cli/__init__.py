"""Tests for enforcer.cli."""
