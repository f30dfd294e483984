"""``python -m runyard``: the same as the ``runyard`` command."""

from runyard.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
