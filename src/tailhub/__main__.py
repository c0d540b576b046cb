"""``python -m tailhub`` runs the command-line interface."""

from tailhub.cli import main

main(prog_name="tailhub")
