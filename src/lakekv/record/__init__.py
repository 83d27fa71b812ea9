"""Layer 2: lakeFS's protobuf records over any :class:`~lakekv.kv.store.Store`.

The generated message modules live in :mod:`lakekv.record.proto`.
"""
