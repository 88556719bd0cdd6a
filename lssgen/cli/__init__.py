"""The `lssgen` command line: `main` dispatches to one module per command (`lssgen.cli.main`);
`lssgen.cli.common` holds what the commands share."""

from lssgen.cli.main import COMMANDS, main

__all__ = ["COMMANDS", "main"]
