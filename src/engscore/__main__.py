"""`python -m engscore` entry point."""

from engscore.cli import main

main()
