"""Stores that wrap stores: a wrapper changes what it overrides and hands on the rest.

:class:`StoreWrapper` is the base; see its docstring for how to write one.
"""

from lakekv.kv.wrappers.base import StoreWrapper

__all__ = ["StoreWrapper"]
