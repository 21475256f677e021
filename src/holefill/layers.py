"""Layers of holefill's networks, for users who want them without the rest of :mod:`holefill.nn`."""

from holefill.nn.pconv import PartialConv2d

__all__ = ["PartialConv2d"]
