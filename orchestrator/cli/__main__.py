"""`python -m orchestrator.cli`: the same as the `fleet` console script."""

from orchestrator.cli import main

main()
