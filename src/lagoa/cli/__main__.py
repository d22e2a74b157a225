"""``python -m lagoa.cli``: the ``lagoa`` command."""

from lagoa.cli import main

if __name__ == "__main__":
    main()
