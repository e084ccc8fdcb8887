"""Risk stories carry the event classifier's answer: severity, the evidence (sentence, lexicon
hits, n-grams, probability) and the model that gave it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('risk_stories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('severity', sa.String(length=10), nullable=True, comment='low | medium | high (with event_type; none for none)'))
        batch_op.add_column(sa.Column('event_evidence_json', sa.Text(), nullable=True, comment='the sentence, lexicon hits, top n-grams and probability behind event_type'))
        batch_op.add_column(sa.Column('event_model_version', sa.String(length=40), nullable=True, comment='event model and lexicon versions (classifier), null for an operator'))


def downgrade() -> None:
    with op.batch_alter_table('risk_stories', schema=None) as batch_op:
        batch_op.drop_column('event_model_version')
        batch_op.drop_column('event_evidence_json')
        batch_op.drop_column('severity')
