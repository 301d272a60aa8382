"""Every command line of the project has one progress convention: bars on by default,
`--no-progress` turns them off; the old spellings `--quiet` and `--progress` are refused."""

from __future__ import annotations

import pytest

from experiments import cli as experiments_cli
from models import cli as models_cli
from models.attribution import cli as attribution_cli
from models.classifiers import cli as classifier_cli
from models.data import cli as data_cli

COMMANDS = {
    "models train": (models_cli._parser, ["train", "c.toml"]),
    "models sample": (models_cli._parser, ["sample", "c.pt", "--out", "o"]),
    "models classifier": (classifier_cli._parser, ["nway"]),
    "models attribute": (attribution_cli._parser, ["--manifest", "m", "--checkpoint", "c.pt", "--out", "o"]),
    "models data fetch": (data_cli._parser, ["fetch", "omniglot"]),
    "experiments run": (experiments_cli._parser, ["run", "artist"]),
    "experiments demo": (experiments_cli._parser, ["demo"]),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_progress_on_by_default_and_no_progress_turns_it_off(name):
    make, argv = COMMANDS[name]
    assert make().parse_args(argv).progress is True
    assert make().parse_args([*argv, "--no-progress"]).progress is False


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("old", ["--quiet", "--progress"])
def test_old_spellings_are_refused(name, old, capsys):
    make, argv = COMMANDS[name]
    with pytest.raises(SystemExit) as exc:
        make().parse_args([*argv, old])
    assert exc.value.code == 2
    assert old in capsys.readouterr().err

