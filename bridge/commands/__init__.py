"""One module per ``ratespike`` subcommand (see :data:`bridge.cli.COMMANDS`)."""
