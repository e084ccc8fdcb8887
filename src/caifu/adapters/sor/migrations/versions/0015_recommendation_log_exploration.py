"""The recommendation log says how each list explored: its list id, the exploration rate,
whether the last slot came from the draw, and (on the last slot's row) the pool that slot
could have held — so an off-policy estimate knows the probability of items not shown too

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recommendation_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('list_id', sa.String(length=32), nullable=True, comment='the list it was shown in: the rows of one showing'))
        batch_op.add_column(sa.Column('explored', sa.Boolean(), nullable=True, comment="the list's last slot came from the exploration draw (recommend/explore)"))
        batch_op.add_column(sa.Column('epsilon', sa.Float(), nullable=True, comment='the exploration rate the list was served with'))
        batch_op.add_column(sa.Column('explore_pool', sa.Text(), nullable=True, comment="on the last slot's row: JSON item ids the last slot could have held, the deterministic one first — with epsilon, every item's inclusion probability"))


def downgrade() -> None:
    with op.batch_alter_table('recommendation_log', schema=None) as batch_op:
        batch_op.drop_column('explore_pool')
        batch_op.drop_column('epsilon')
        batch_op.drop_column('explored')
        batch_op.drop_column('list_id')
