"""`python -m ndogo` runs the command line, like the `ndogo` script."""

from ndogo.cli import main

main()
