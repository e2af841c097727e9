"""Tests for enforcer.api."""
