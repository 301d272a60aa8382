"""The shared CLI pieces: `--shard i/n` parsing and the error-reporting main wrapper."""

import argparse
import json

import pytest

from models.cliutil import parse_shard, run_json_command


def test_parse_shard_reads_i_of_n_and_rejects_bad_ones():
    assert parse_shard("0/1") == (0, 1)
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/2", "1/0", "a/b", "1", "1/2/3"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_shard(bad)


def test_run_json_command_prints_the_result_or_one_error_line(capsys):
    assert run_json_command(lambda: {"a": [1]}) == 0
    assert json.loads(capsys.readouterr().out) == {"a": [1]}

    def missing():
        raise KeyError("label")

    def bad():
        raise ValueError("--out: required")

    def unreadable():
        raise FileNotFoundError("x.png: no such file")

    for work, line in ((missing, "error: label: missing from the input"), (bad, "error: --out: required"),
                       (unreadable, "error: x.png: no such file")):
        assert run_json_command(work) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.strip() == line

    def bug():
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        run_json_command(bug)
