"""``python -m lakekv`` runs the command line."""

from lakekv.cli.main import main

main()
