"""run_or_replay: a finished run's JSON is reported without running; bad inputs exit with 2."""

import argparse
import json

from benchmarks.report import add_replay_options, run_or_replay


def _args(argv):
    p = argparse.ArgumentParser()
    add_replay_options(p)
    return p.parse_args(argv)


def test_replay_reports_the_json_without_running(tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"x": 3}))
    ran = []
    rc = run_or_replay(_args(["--from-json", str(path), "--no-write"]), "s", lambda: "never checked",
                       ran.append, lambda summary: f"x is {summary['x']}")
    assert rc == 0 and not ran and "x is 3" in capsys.readouterr().out


def test_missing_json_and_bad_inputs_exit_with_2(tmp_path, capsys):
    ran = []
    assert run_or_replay(_args(["--from-json", str(tmp_path / "no.json")]), "s", lambda: None, ran.append, str) == 2
    assert run_or_replay(_args(["--no-write"]), "s", lambda: "--data: missing", ran.append, str) == 2
    assert not ran and "--data: missing" in capsys.readouterr().out
    assert run_or_replay(_args(["--no-write"]), "s", lambda: None, lambda a: {"ok": 1}, str) == 0
