"""Tests for enforcer.store."""
