"""Helpers shared by the workspace's test suites (never published)."""
