"""Fields: models of f(x, y, z, t) behind one interface (:class:`Field`)."""
from .base import Field
from .hexplane import HexPlaneField
from .perframe import PerFrameHexPlaneField
from .voxel import FrameVolumeField

__all__ = ["Field", "HexPlaneField", "PerFrameHexPlaneField", "FrameVolumeField"]
