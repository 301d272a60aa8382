"""prolific: prolific_links (a study's Prolific study) and bonus_payments (the bonus ledger)

Revision ID: 0006_prolific
Revises: 0005_design_versions

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_prolific"
down_revision = "0005_design_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prolific_links",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("prolific_study_id", sa.String(length=64), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], ondelete="CASCADE",
                                name=op.f("fk_prolific_links_study_id_studies")),
        sa.PrimaryKeyConstraint("study_id", name=op.f("pk_prolific_links")),
    )
    op.create_table(
        "bonus_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("bulk_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], ondelete="CASCADE",
                                name=op.f("fk_bonus_payments_study_id_studies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bonus_payments")),
        sa.UniqueConstraint("study_id", "key", name=op.f("uq_bonus_payments_study_id")),
    )
    op.create_index(op.f("ix_bonus_payments_study_id"), "bonus_payments", ["study_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_bonus_payments_study_id"), table_name="bonus_payments")
    op.drop_table("bonus_payments")
    op.drop_table("prolific_links")
