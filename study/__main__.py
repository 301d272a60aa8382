"""`python -m study COMMAND ...`: the study commands (study/cli.py) on a FlaskGroup that builds
the app."""

from __future__ import annotations

import sys

from flask.cli import FlaskGroup

from study import create_app
from study.cli import register_commands


def main(argv: list[str] | None = None) -> int:
    group = FlaskGroup(
        name="study", create_app=lambda: create_app(), add_default_commands=False,
        load_dotenv=False, help="diffusion-psychophysics study platform",
    )
    register_commands(group)
    try:
        group.main(args=argv, prog_name="python -m study", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
