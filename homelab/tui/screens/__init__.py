"""Screens: the wizard, the dashboard and its drill-down, plan review, apply, help, dialogs."""
