"""Figures: previews of reconstructions and reports."""
