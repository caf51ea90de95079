"""Only what pyproject.toml cannot say: the package list is "every homelab* package found
under homelab/" plus `homelab.recipes`, which lives at the top level (recipes/, mapped in
pyproject's package-dir). packages.find cannot add a mapped package to what it finds."""
from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["homelab", "homelab.*"]), "homelab.recipes"])
