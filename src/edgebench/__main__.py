"""``python -m edgebench``."""

from edgebench.cli import main

main()
