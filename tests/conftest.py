"""The project's tests use the shipped plugin (lakekv.testing.plugin, loaded by entry point)."""
