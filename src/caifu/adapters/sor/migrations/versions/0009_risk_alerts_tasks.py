"""Risk exposure: alerts (one per event and holder), advisor tasks and their status
history; a story's polarity, who classified it and when it was linked

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from caifu.adapters.sor import rls

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_alerts',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('alert_id', sa.String(length=40), nullable=False),
    sa.Column('story_id', sa.String(length=40), nullable=False, comment='the story that raised it'),
    sa.Column('security_code', sa.String(length=6), nullable=False),
    sa.Column('company_name', sa.String(length=200), nullable=False, comment='as written in the story'),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('event_at', sa.DateTime(), nullable=False, comment="the story's first published (UTC)"),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('advisor_id', sa.String(length=32), nullable=True, comment="the customer's advisor when raised"),
    sa.Column('via', sa.String(length=12), nullable=False, comment="position (a fund's holdings: later)"),
    sa.Column('snapshot_date', sa.Date(), nullable=False, comment='the positions snapshot read'),
    sa.Column('quantity', sa.Numeric(precision=20, scale=0), nullable=False),
    sa.Column('market_value', sa.Numeric(precision=18, scale=2), nullable=False, comment='the value at risk'),
    sa.Column('cost', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('unrealised_pnl', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('customer_risk_level', sa.String(length=4), nullable=True, comment='C1..C5 from the latest assessment'),
    sa.Column('evidence_json', sa.Text(), nullable=False, comment="the linked span (name, rule, score, sentence) and the story's sources"),
    sa.Column('message', sa.Text(), nullable=False, comment='the factual warning an advisor may send'),
    sa.Column('message_may_send', sa.Boolean(), nullable=False),
    sa.Column('message_notes', sa.Text(), nullable=False),
    sa.Column('repeat_story_ids_json', sa.Text(), nullable=False, comment='later stories about the same event: no new alert'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'alert_id', name=op.f('pk_risk_alerts')),
    comment='舆情预警：一个事件 × 一位持仓客户'
    )
    with op.batch_alter_table('risk_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_alerts_tenant_id_customer_id_security_code_event_type'), ['tenant_id', 'customer_id', 'security_code', 'event_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_alerts_tenant_id_story_id'), ['tenant_id', 'story_id'], unique=False)

    op.create_table('risk_task_events',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('task_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=12), nullable=True),
    sa.Column('to_status', sa.String(length=12), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'task_id', 'seq', name=op.f('pk_risk_task_events')),
    comment='舆情任务状态变更记录（谁、何时、为何）'
    )
    op.create_table('risk_tasks',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('task_id', sa.String(length=40), nullable=False),
    sa.Column('alert_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('advisor_id', sa.String(length=32), nullable=True, comment="assigned: the customer's advisor"),
    sa.Column('status', sa.String(length=12), nullable=False, comment='open | acknowledged | contacted | done | dismissed'),
    sa.Column('reason', sa.Text(), nullable=True, comment='why dismissed'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'task_id', name=op.f('pk_risk_tasks')),
    comment='投顾舆情任务：每条预警一项'
    )
    with op.batch_alter_table('risk_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_tasks_tenant_id_advisor_id_status'), ['tenant_id', 'advisor_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_tasks_tenant_id_alert_id'), ['tenant_id', 'alert_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_risk_tasks_tenant_id_customer_id'), ['tenant_id', 'customer_id'], unique=False)

    with op.batch_alter_table('risk_stories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('polarity', sa.String(length=10), nullable=True, comment='negative | neutral | positive (with event_type)'))
        batch_op.add_column(sa.Column('classified_by', sa.String(length=120), nullable=True, comment='who set event_type: classifier or operator'))
        batch_op.add_column(sa.Column('linked_at', sa.DateTime(), nullable=True, comment='when companies_json was filled'))

    rls.secure(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table('risk_stories', schema=None) as batch_op:
        batch_op.drop_column('linked_at')
        batch_op.drop_column('classified_by')
        batch_op.drop_column('polarity')

    with op.batch_alter_table('risk_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_tasks_tenant_id_customer_id'))
        batch_op.drop_index(batch_op.f('ix_risk_tasks_tenant_id_alert_id'))
        batch_op.drop_index(batch_op.f('ix_risk_tasks_tenant_id_advisor_id_status'))

    op.drop_table('risk_tasks')
    op.drop_table('risk_task_events')
    with op.batch_alter_table('risk_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_alerts_tenant_id_story_id'))
        batch_op.drop_index(batch_op.f('ix_risk_alerts_tenant_id_customer_id_security_code_event_type'))

    op.drop_table('risk_alerts')
