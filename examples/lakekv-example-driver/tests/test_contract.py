from lakekv.testing import StoreContractSuite as TestExampleDriver
