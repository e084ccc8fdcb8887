"""Suitability assessments record the investor's 投资品种 (varieties), so the variety rule of
the suitability match can refuse on real data

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("suitability_assessments", schema=None) as batch_op:
        # NULL for every stored row: those questionnaires did not ask (no variety refusal)
        batch_op.add_column(sa.Column("varieties", sa.Text(), nullable=True,
                                      comment="投资品种（多选）"))


def downgrade() -> None:
    with op.batch_alter_table("suitability_assessments", schema=None) as batch_op:
        batch_op.drop_column("varieties")
