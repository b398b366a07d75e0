"""`python -m cli` runs the `campaign` command."""

from cli.main import main

main()
