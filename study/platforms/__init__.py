"""Recruitment platforms' own APIs, called by the researcher side (never by participant routes)."""
