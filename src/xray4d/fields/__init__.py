"""Fields: models of f(x, y, z, t) behind one interface (:class:`Field`)."""
from .base import Field
from .hexplane import HexPlaneField
from .perframe import PerFrameHexPlaneField

__all__ = ["Field", "HexPlaneField", "PerFrameHexPlaneField"]
