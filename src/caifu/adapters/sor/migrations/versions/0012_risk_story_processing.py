"""Risk stories keep why their automatic processing (link → classify → alerts) failed, so a
failure on intake is visible and the story can be processed again

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('risk_stories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('processing_error', sa.Text(), nullable=True, comment='why the last link → classify → alerts run failed; null once it succeeds'))
        batch_op.add_column(sa.Column('processing_failed_at', sa.DateTime(), nullable=True, comment='when that run failed (UTC)'))


def downgrade() -> None:
    with op.batch_alter_table('risk_stories', schema=None) as batch_op:
        batch_op.drop_column('processing_failed_at')
        batch_op.drop_column('processing_error')
