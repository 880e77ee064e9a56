"""``python -m harness`` runs the same command line as ``harness``."""

from harness.cli import main

if __name__ == "__main__":
    main()
