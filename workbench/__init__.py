"""Compute core of the wide-and-deep workbench: no ipywidgets, IPython or pyplot imports here."""

__version__ = "0.1.0"
