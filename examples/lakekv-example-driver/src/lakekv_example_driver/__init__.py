"""An example out-of-tree lakekv driver: ``jsonfile:///path/to/store.json``.

Installing the package registers the scheme through the ``lakekv.drivers`` entry point, so
``lakekv.open_store("jsonfile:///kv.json")`` finds :class:`JSONFileStore` without importing
this package first.
"""

from lakekv_example_driver.jsonfile import JSONFileStore

__all__ = ["JSONFileStore"]
