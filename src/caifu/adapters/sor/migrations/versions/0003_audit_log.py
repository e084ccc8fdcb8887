"""audit log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False,
                  comment="1, 2, 3 … per tenant: a gap is a deleted record"),
        sa.Column("at", sa.DateTime(), nullable=False, comment="UTC"),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("customer_ids_json", sa.Text(), nullable=False, comment="customers touched"),
        sa.Column("fields_json", sa.Text(), nullable=False,
                  comment="fields unmasked or exported"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False,
                  comment="SHA-256 of the record and prev_hash"),
        sa.PrimaryKeyConstraint("tenant_id", "seq", name=op.f("pk_audit_log")),
        comment="审计日志：只追加，哈希链防篡改",
    )


def downgrade() -> None:
    op.drop_table("audit_log")
