"""Fields: models of f(x, y, z, t) behind one interface (:class:`Field`); and the 4D-ONIX
network (:class:`OnixNetwork`), a field conditioned on each frame's projections."""
from .base import Field
from .hexplane import HexPlaneField
from .onix import OnixNetwork
from .perframe import PerFrameHexPlaneField
from .voxel import FrameVolumeField

__all__ = ["Field", "HexPlaneField", "PerFrameHexPlaneField", "FrameVolumeField", "OnixNetwork"]
