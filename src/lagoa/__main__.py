"""``python -m lagoa``: the command line, as ``lagoa``."""

from lagoa.cli import main

main()
