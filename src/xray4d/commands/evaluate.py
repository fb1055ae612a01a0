"""The `xray4d evaluate` verb (placeholder until implemented)."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the verb (not implemented yet)."""
