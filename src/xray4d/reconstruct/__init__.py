"""Reconstruction: the method registry and contract, the trainer, loss terms and the methods."""
from .registry import available_methods, get_method, register_method

__all__ = ["available_methods", "get_method", "register_method"]
