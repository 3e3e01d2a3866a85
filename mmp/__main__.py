"""`python -m mmp` is the `mmp` command."""

from mmp.cli import main

main()
