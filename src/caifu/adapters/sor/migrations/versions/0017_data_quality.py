"""Data-quality history: each committed batch's profile (rows written, nulls per column,
oldest and newest business date) and the alerts the thresholds raise and resolve

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from caifu.adapters.sor import rls

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ingest_profiles',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=False, comment='the ingest_log batch'),
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('rows_loaded', sa.BigInteger(), nullable=False, comment='rows the batch wrote'),
    sa.Column('nulls_json', sa.Text(), nullable=False, comment='column -> null values among the rows written'),
    sa.Column('date_column', sa.String(length=64), nullable=True, comment="the table's business date column, if any"),
    sa.Column('oldest_date', sa.Date(), nullable=True, comment="oldest business date written (tenant's local date)"),
    sa.Column('newest_date', sa.Date(), nullable=True, comment="newest business date written (tenant's local date)"),
    sa.Column('profiled_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'batch_id', name=op.f('pk_ingest_profiles')),
    comment='导入批次画像：入库行数、各列空值数、业务日期范围'
    )
    with op.batch_alter_table('ingest_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_profiles_tenant_id_table_name_newest_date'), ['tenant_id', 'table_name', 'newest_date'], unique=False)

    op.create_table('quality_alerts',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('alert_id', sa.String(length=32), nullable=False),
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False, comment='quarantine_rate | null_rate_rise | freshness'),
    sa.Column('subject', sa.String(length=64), nullable=False, comment='the column of a null-rate alert, else empty'),
    sa.Column('observed', sa.Float(), nullable=True, comment='rate, rise or lag (days) when last breached'),
    sa.Column('threshold', sa.Float(), nullable=True, comment='the threshold it broke'),
    sa.Column('batch_id', sa.String(length=40), nullable=True, comment='the batch last judged in breach, if any'),
    sa.Column('detail', sa.Text(), nullable=False, comment='what was seen, in words'),
    sa.Column('status', sa.String(length=10), nullable=False, comment='open | resolved'),
    sa.Column('raised_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False, comment='the last check that breached'),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_by', sa.String(length=40), nullable=True, comment="the batch whose check passed, or 'check'"),
    sa.Column('open_key', sa.String(length=1), nullable=True, comment="'1' while open, NULL once resolved: the unique index allows one open alert per rule and subject"),
    sa.PrimaryKeyConstraint('tenant_id', 'alert_id', name=op.f('pk_quality_alerts')),
    comment='数据质量告警：阈值被突破时打开，之后检查通过时关闭'
    )
    with op.batch_alter_table('quality_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quality_alerts_tenant_id_status_raised_at'), ['tenant_id', 'status', 'raised_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_quality_alerts_tenant_id_table_name_rule_subject_open_key'), ['tenant_id', 'table_name', 'rule', 'subject', 'open_key'], unique=True)
    rls.secure(op.get_bind())  # both tables carry tenant_id


def downgrade() -> None:
    with op.batch_alter_table('quality_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quality_alerts_tenant_id_table_name_rule_subject_open_key'))
        batch_op.drop_index(batch_op.f('ix_quality_alerts_tenant_id_status_raised_at'))

    op.drop_table('quality_alerts')
    with op.batch_alter_table('ingest_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_profiles_tenant_id_table_name_newest_date'))

    op.drop_table('ingest_profiles')
