"""audit log, users, API keys

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
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(length=64), nullable=False,
                  comment="login name, unique across tenants"),
        sa.Column("tenant_id", sa.String(length=32), nullable=True,
                  comment="null only for platform_admin"),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("branch_id", sa.String(length=32), nullable=True,
                  comment="branch_manager: his branch"),
        sa.Column("advisor_id", sa.String(length=32), nullable=True,
                  comment="advisor: the advisor record he is"),
        sa.Column("password_hash", sa.String(length=200), nullable=False, comment="argon2id"),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_users")),
        comment="用户（控制台登录）",
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_tenant_id_role"), ["tenant_id", "role"],
                              unique=False)
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=8), nullable=False, comment="public part of the key"),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False, comment="what the key is for"),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False,
                  comment="the secret is shown once"),
        sa.Column("quota_per_minute", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
        comment="API 密钥（机器客户端，按租户与角色）",
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_table("audit_log")
