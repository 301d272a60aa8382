"""The study platform: a Flask app where participants do ClickMe and real-or-fake tasks."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from study import db
from study.config import PROJECT_ROOT, build_config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults and environment from study.config, then `config` overrides."""
    instance = os.environ.get("STUDY_INSTANCE_PATH", str(PROJECT_ROOT / "instance"))
    app = Flask(__name__, instance_path=instance, instance_relative_config=True)
    app.config.from_mapping(build_config(app.instance_path))
    if config:
        app.config.from_mapping(config)
    db.init_app(app)

    from study import blueprints

    blueprints.register(app)
    return app
