"""Errors as JSON for the API: `{"error": {"message": str, "field": str | null}}`, 4xx for bad requests.

`ApiError` is raised by the endpoints and validators; `register(app)` turns it and every HTTP
error under /api/ (404, 405, 413, 415, bad JSON) into that body. Participant pages keep Flask's
HTML error pages. A database that is unreachable or locked answers 503 with Retry-After (the
client retries); a database whose schema is not at the newest revision (never migrated, or
migrated by an older version) answers every request with 503 and a message that says to migrate;
any other unhandled error is a 500 with the same body.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

API_PREFIX = "/api/"
NOT_MIGRATED = ("the database is not at this version's schema; run `python -m study.migrate "
                "upgrade` (or `python -m study db-upgrade`) with the server's DATABASE_URL, then retry")


class ApiError(Exception):
    """A refused API request: HTTP status, a message for people, the request field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def error_response(status: int, message: str, field: str | None = None) -> Response:
    resp = jsonify(error={"message": message, "field": field})
    resp.status_code = status
    return resp


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return error_response(err.status, err.message, err.field)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        if not _is_api_request():
            return err
        message = err.description or err.name
        if err.code == 413:
            message = "request body too large"
        resp = error_response(err.code or 400, message, "body" if err.code == 413 else None)
        if err.code == 405 and err.get_response().headers.get("Allow"):
            resp.headers["Allow"] = err.get_response().headers["Allow"]
        return resp

    @app.errorhandler(InternalServerError)
    def _server_error(err: InternalServerError):
        exc = err.original_exception
        if _is_api_request() and _database_unavailable(exc):
            # A restarting PostgreSQL or an SQLite lock held past the busy timeout: nothing was
            # stored, and the same request will work shortly (the browser's outbox retries).
            app.logger.warning("database unavailable on %s: %s", request.path,
                               str(getattr(exc, "orig", "")).splitlines()[:1])
            resp = error_response(503, "the database is briefly unavailable; the request was not "
                                  "stored, please retry")
            resp.headers["Retry-After"] = "2"
            return resp
        if _schema_behind(app, exc):
            app.logger.error("%s: %s", request.path, NOT_MIGRATED)
            if not _is_api_request():
                return NOT_MIGRATED + "\n", 503, {"Content-Type": "text/plain; charset=utf-8"}
            return error_response(503, NOT_MIGRATED)
        if not _is_api_request():
            return err
        app.logger.exception("unhandled error on %s", request.path)
        return error_response(500, "internal error; the request was not stored")


# OperationalError also covers "no such table" and SQL mistakes, which are bugs to surface as 500,
# not outages to retry: only these messages (SQLite, psycopg) mean "unreachable or locked".
_UNAVAILABLE = (
    "database is locked", "database is busy", "database table is locked",
    "connection", "server closed", "terminating", "shutting down", "starting up",
    "could not connect", "recovery mode", "timeout expired", "canceling statement",
)


def _schema_behind(app: Flask, exc: BaseException | None) -> bool:
    """Whether `exc` is a database error and the database is not at the newest revision (a
    missing table or column of an unmigrated database; checked only after such an error)."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return False
    from study.migrate import at_head

    try:
        return not at_head(app.extensions["sqlalchemy_engine"])
    except DBAPIError:
        return False  # unreachable: the outage's own answer follows


def _database_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` is the database being unreachable or locked (not a bug in a request)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    message = str(exc.orig).lower()
    return any(m in message for m in _UNAVAILABLE)
