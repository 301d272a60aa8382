"""stimuli.class_text: the class as a participant is told it

Revision ID: 0004_stimulus_class_text
Revises: 0003_login_failures

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from study.export_views import create_views, drop_views

revision = "0004_stimulus_class_text"
down_revision = "0003_login_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy of the table) keeps the export views that read it.
    op.add_column("stimuli", sa.Column("class_text", sa.String(length=200), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by copying the table, which the views that read it forbid.
    drop_views(op.get_bind())
    with op.batch_alter_table("stimuli", schema=None) as batch_op:
        batch_op.drop_column("class_text")
    create_views(op.get_bind(), design=False)  # participants.design_hash comes in 0005
