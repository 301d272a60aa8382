"""The command line's error for bad user input, shared by every study command module."""

from __future__ import annotations

import click


class InputError(click.ClickException):
    """Bad input from the user: printed as 'Error: ...', exit code 2."""

    exit_code = 2
