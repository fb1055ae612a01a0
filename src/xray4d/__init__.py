"""xray4d: 4D reconstruction of fast processes from sparse X-ray projections."""
from __future__ import annotations

__version__ = "0.1.0"
