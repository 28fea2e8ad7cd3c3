"""Panels for single experiments, one module each (registered with the app by `widgets/__init__`)."""
