"""One module per database engine. Import them through :func:`lakekv.open_store`, not directly."""
