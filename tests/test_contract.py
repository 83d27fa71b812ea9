"""Run the shipped conformance suite over every configured store (``--store``)."""

from lakekv.testing import StoreContractSuite


class TestStoreContract(StoreContractSuite):
    pass
