"""Reading and writing files: the HDF5 recording and reconstruction files of the data
contract (``docs/data-format.md``), written atomically; importers of other formats
(:mod:`xray4d.io.formats`, :func:`load_any`)."""
from ..errors import InputError
from .files import atomic_path
from .formats import FORMATS, detect_format, load_any, peek_quantity
from .hdf5 import (describe_file, load_recording, load_reconstruction, load_volume,
                   load_volume_times, peek_pixel_size, peek_recording, save_recording,
                   save_reconstruction)

__all__ = ["FORMATS", "InputError", "atomic_path", "describe_file", "detect_format",
           "load_any", "load_recording", "load_reconstruction", "load_volume",
           "load_volume_times", "peek_pixel_size", "peek_quantity", "peek_recording",
           "save_recording", "save_reconstruction"]
