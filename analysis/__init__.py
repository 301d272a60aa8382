"""Analysis of diffusion-psychophysics studies: from exported responses to statistics,
figures and an HTML report. Reads only the export (docs/formats.md §3) and model maps (§4)."""
