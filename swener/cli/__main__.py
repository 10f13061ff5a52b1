"""`python -m swener.cli`: the command line, as the `swener` script runs it."""
from swener.cli import main

main()
