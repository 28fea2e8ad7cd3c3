"""Panels for single experiments, one module each; importing `widgets` registers them all with the app."""
