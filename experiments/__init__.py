"""Pipelines that run models, study and analysis end to end, reproducibly.

`python -m experiments run artist|facade|study [--profile tiny|full]` writes one folder per run
(config.json, log.txt, metrics.json, figures/, report.md); `python -m experiments demo` builds and
serves the two demo studies. Profiles are data (experiments/configs/*.toml); trained networks are
cached by the hash of everything that determines them, so runs and tests share them.
"""
