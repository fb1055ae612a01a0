"""Reading and writing files: the HDF5 recording and reconstruction files of the data
contract (``docs/data-format.md``), written atomically."""
from ..errors import InputError
from .files import atomic_path
from .hdf5 import (describe_file, load_recording, load_reconstruction, load_volume,
                   load_volume_times, peek_pixel_size, peek_recording, peek_volume, save_recording,
                   save_reconstruction)

__all__ = ["InputError", "atomic_path", "describe_file", "load_recording", "load_reconstruction",
           "load_volume", "load_volume_times", "peek_pixel_size", "peek_recording", "peek_volume",
           "save_recording", "save_reconstruction"]
