"""An export folder holding both trials.csv and trials.parquet: the analysis reads the format
data_dictionary.json names, else the newer file, and lists the file it read among its inputs."""

from __future__ import annotations

import json
import os

import pandas as pd

from analysis.load import find_table, load_export
from analysis.synthetic_exports import write_study


def _both(tmp_path):
    write_study(tmp_path / "sim", "csv")
    export = tmp_path / "sim" / "export"
    trials = pd.read_csv(export / "trials.csv", dtype=str, keep_default_na=False)
    trials.iloc[:3].to_parquet(export / "trials.parquet")  # a different, stale export
    return export


def test_data_dictionary_names_the_format(tmp_path):
    export = _both(tmp_path)
    (export / "data_dictionary.json").write_text(json.dumps({"format": "csv"}))
    os.utime(export / "trials.csv", ns=(1, 1))  # older, yet named by the dictionary
    assert find_table(export, "trials") == export / "trials.csv"
    loaded = load_export(export)
    assert str(export / "trials.csv") in loaded.sources
    assert str(export / "trials.parquet") not in loaded.sources
    assert len(loaded.trials) > 3


def test_without_a_dictionary_the_newer_file(tmp_path):
    export = _both(tmp_path)
    (export / "data_dictionary.json").unlink(missing_ok=True)
    os.utime(export / "trials.parquet", ns=(1, 1))
    assert find_table(export, "trials") == export / "trials.csv"
    os.utime(export / "trials.csv", ns=(0, 0))
    assert find_table(export, "trials") == export / "trials.parquet"
