"""Constants shared by the hardening tests and their fixtures."""

from __future__ import annotations

SECRET = "hardening-secret-key-0123456789abcdef"
EMAIL = "grace@example.org"
PASSWORD = "a long enough passphrase"
