"""One module per ``python -m cra`` command (see :data:`cra.cli.COMMANDS`)."""
