"""Widgets, each named for what it shows; data comes in as attributes, requests go up as messages."""
