"""Parley's own tools, registered through the `parley.tools` entry points like any plugin."""
