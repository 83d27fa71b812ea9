"""The ``lakekv`` command line: thin wrappers that parse, call a library function and format."""
