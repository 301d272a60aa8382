"""design versions: design_versions table, participants.design_hash, export_trials.design_hash

Revision ID: 0005_design_versions
Revises: 0004_stimulus_class_text

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from study.export_views import create_views, drop_views

revision = "0005_design_versions"
down_revision = "0004_stimulus_class_text"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "design_versions",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("stimuli", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_design_versions")),
    )
    # A plain ADD COLUMN (no batch copy of the table); the trials view is rebuilt to show it.
    op.add_column("participants", sa.Column("design_hash", sa.String(length=64), nullable=True))
    drop_views(op.get_bind())
    create_views(op.get_bind(), design=True)


def downgrade() -> None:
    # SQLite drops a column by copying the table, which the views that read it forbid.
    drop_views(op.get_bind())
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("design_hash")
    create_views(op.get_bind(), design=False)
    op.drop_table("design_versions")
