"""export views: export_trials, export_clicks, export_events (docs/formats.md §3)

Revision ID: 0002_export_views
Revises: 0001_initial
"""

from __future__ import annotations

from alembic import op

from study.export_views import create_views, drop_views

revision = "0002_export_views"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_views(op.get_bind(), design=False)  # participants.design_hash comes in 0005


def downgrade() -> None:
    drop_views(op.get_bind())
