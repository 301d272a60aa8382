"""The headers every response carries unless it sets its own: the Content-Security-Policy and
the rest of the browser-side protections."""

from __future__ import annotations

from flask import Response

# No inline scripts or styles anywhere (templates load /static files only); images may come
# from blob: URLs because the task pages fetch stimuli with the participant token.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Prolific and MTurk ids travel in the participant's URL: never leak it to other sites.
    ("Referrer-Policy", "no-referrer"),
    # Pages and API answers may hold a participant's token or trial data: no cache keeps them.
    # Static files and stimulus images set their own Cache-Control, which stays.
    ("Cache-Control", "no-store"),
)


def add_security_headers(resp: Response) -> Response:
    """Add each of SECURITY_HEADERS that the response does not set itself (one pass over its
    headers per request, rather than one scan per header)."""
    present = {name.lower() for name in resp.headers.keys()}
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            resp.headers.add(name, value)
    return resp
