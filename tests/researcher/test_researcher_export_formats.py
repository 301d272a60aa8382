"""An export into a folder that holds another format's export leaves one export there, and the
analysis reads that one."""

from __future__ import annotations

import json

from researcher_helpers import create_demo_study, populate

from analysis.load import load_export


def test_export_in_one_format_removes_the_other_and_analysis_reads_it(app, stimuli_dir, tmp_path):
    sid = create_demo_study(app, stimuli_dir(2, 2))
    populate(app, sid, 2, 3, clicks_each=1)
    runner = app.test_cli_runner()
    out = tmp_path / "export"
    assert runner.invoke(args=["export", "demo", "--out", str(out), "--format", "parquet"]).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "clicks.parquet", "data_dictionary.json", "events.parquet", "trials.parquet"]
    (out / "notes.txt").write_text("kept")
    result = runner.invoke(args=["export", "demo", "--out", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "clicks.csv", "data_dictionary.json", "events.csv", "notes.txt", "trials.csv"]
    assert json.loads((out / "data_dictionary.json").read_text())["format"] == "csv"
    export = load_export(out)
    assert str(out / "trials.csv") in export.sources and len(export.trials) == 6
