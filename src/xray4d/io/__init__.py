"""Reading and writing files: the HDF5 recording and reconstruction files of the data
contract (``docs/data-format.md``), written atomically; importers of other formats
(:mod:`xray4d.io.formats`, :func:`load_any`) and exporters of reconstructions
(:mod:`xray4d.io.export`)."""
from ..errors import InputError
from .export import export_kind, export_movie, export_ome_tiff, export_tiff_stack
from .files import atomic_path
from .formats import FORMATS, detect_format, load_any, peek_quantity
from .hdf5 import (load_recording, load_reconstruction, load_volume, load_volume_times,
                   save_recording, save_reconstruction)
from .peek import describe_file, peek_angles, peek_pixel_size, peek_recording, peek_volume

__all__ = ["FORMATS", "InputError", "atomic_path", "describe_file", "detect_format",
           "export_kind", "export_movie", "export_ome_tiff", "export_tiff_stack", "load_any",
           "load_recording", "load_reconstruction", "load_volume", "load_volume_times",
           "peek_angles", "peek_pixel_size", "peek_quantity", "peek_recording", "peek_volume", "save_recording",
           "save_reconstruction"]
