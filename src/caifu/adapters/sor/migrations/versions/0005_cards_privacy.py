"""customer cards (360 and sidebar context); data-subject requests and storage-only customers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from caifu.adapters.sor import rls

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_cards",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False, comment="the data date the card describes"),
        sa.Column("card_json", sa.Text(), nullable=False,
                  comment="holdings, recent trades, P&L, lifecycle, scores, suitability"),
        sa.Column("built_at", sa.DateTime(), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=32), nullable=True,
                  comment="the card's lifecycle stage, copied out so customer search can "
                          "filter on it"),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_customer_cards")),
        comment="客户卡片：客户360与侧边栏的持仓、交易、盈亏、生命周期、评分、适当性",
    )
    with op.batch_alter_table("customer_cards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_cards_tenant_id_lifecycle_stage"),
                              ["tenant_id", "lifecycle_stage"], unique=False)
    op.create_table(
        "dsr_requests",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="export | erasure"),
        sa.Column("outcome", sa.String(length=16), nullable=False,
                  comment="exported | deleted | storage_only | refused"),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=False,
                  comment="tables and row counts touched, the retention rule applied"),
        sa.PrimaryKeyConstraint("tenant_id", "request_id", name=op.f("pk_dsr_requests")),
        comment="个人信息主体请求：导出、删除或仅存储",
    )
    with op.batch_alter_table("dsr_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dsr_requests_tenant_id_customer_id"),
                              ["tenant_id", "customer_id"], unique=False)
    op.create_table(
        "restricted_customers",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False, comment="why the records are kept"),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_restricted_customers")),
        comment="仅存储：依法保留、停止处理的客户",
    )
    rls.secure(op.get_bind())


def downgrade() -> None:
    op.drop_table("restricted_customers")
    op.drop_table("dsr_requests")
    op.drop_table("customer_cards")
