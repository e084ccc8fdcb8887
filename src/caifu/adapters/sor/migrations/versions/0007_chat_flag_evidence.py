"""Chat compliance flags keep their source (lexicon | model), their evidence and the model
version beside the lexicon version

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat_compliance_flags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=10), server_default="lexicon",
                                      nullable=False,
                                      comment="lexicon | model: what raised the flag"))
        batch_op.add_column(sa.Column(
            "evidence_json", sa.Text(), nullable=True,
            comment="lexicon span and/or the model's score and top n-grams"))
        batch_op.add_column(sa.Column("model_version", sa.String(length=64), nullable=True,
                                      comment="the chat model that judged the message"))


def downgrade() -> None:
    with op.batch_alter_table("chat_compliance_flags", schema=None) as batch_op:
        batch_op.drop_column("model_version")
        batch_op.drop_column("evidence_json")
        batch_op.drop_column("source")
