"""The shipped conformance suite. Any driver proves it honours the contract with::

    # test_mydriver.py
    from lakekv.testing import StoreContractSuite as TestMyDriver

    $ pytest --store mydriver://... test_mydriver.py

The pytest plugin (``lakekv.testing.plugin``, loaded automatically) adds ``--store`` and
``--page-sizes`` and the fixtures described there.
"""

from lakekv.testing.plugin import (
    RUN_ID,
    fresh_url,
    isolated_url,
    materialize,
    require_available,
    require_driver,
    require_module,
    unique_name,
)
from lakekv.testing.suite import StoreContractSuite

__all__ = [
    "RUN_ID",
    "StoreContractSuite",
    "fresh_url",
    "isolated_url",
    "materialize",
    "require_available",
    "require_driver",
    "require_module",
    "unique_name",
]
