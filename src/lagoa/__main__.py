"""``python -m lagoa``: the command line, as ``lagoa``."""

from lagoa.cli import main

if __name__ == "__main__":
    main()
