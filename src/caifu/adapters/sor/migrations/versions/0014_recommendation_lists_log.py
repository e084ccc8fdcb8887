"""Next best action where advisors act: the published recommendation list per customer
(read by primary key for the sidebar and the API) and the log of every recommendation shown,
with its rank, score, propensity, policy version and outcomes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from caifu.adapters.sor import rls

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recommendation_lists',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False, comment='the day the policy stood at'),
    sa.Column('policy_version', sa.String(length=64), nullable=False, comment="the tenant configuration's version / the model's digest"),
    sa.Column('generated_at', sa.DateTime(), nullable=False, comment='UTC'),
    sa.Column('k', sa.Integer(), nullable=False, comment='the list length published; the rest are spares'),
    sa.Column('items_json', sa.Text(), nullable=False, comment='best first, k + spares: item_id, item_type, score, reason, and what suitability judges again at read time (risk, horizon, variety, validity)'),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_id', name=op.f('pk_recommendation_lists')),
    comment='推荐清单：每位客户已发布的排序清单（含备选），侧边栏与接口按主键读取'
    )
    op.create_table('recommendation_log',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('rec_id', sa.String(length=32), nullable=False, comment='one item shown once'),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.String(length=64), nullable=False),
    sa.Column('item_type', sa.String(length=8), nullable=False, comment='content | fund | action'),
    sa.Column('surface', sa.String(length=16), nullable=False, comment='sidebar | api | campaign | group'),
    sa.Column('rank', sa.Integer(), nullable=False, comment='1 = first shown'),
    sa.Column('score', sa.Float(), nullable=True, comment="the ranker's score"),
    sa.Column('propensity', sa.Float(), nullable=False, comment='the probability the serving policy shows this item (1.0: deterministic)'),
    sa.Column('policy_version', sa.String(length=64), nullable=False),
    sa.Column('shown_at', sa.DateTime(), nullable=False, comment='UTC'),
    sa.Column('shown_by', sa.String(length=100), nullable=False, comment='who saw it: user, key or advisor'),
    sa.Column('tracking_token', sa.String(length=32), nullable=True, comment="the tracking link in the item's send text (content with a URL)"),
    sa.Column('sent_at', sa.DateTime(), nullable=True, comment='the advisor sent it from the sidebar'),
    sa.Column('opened_at', sa.DateTime(), nullable=True),
    sa.Column('clicked_at', sa.DateTime(), nullable=True),
    sa.Column('converted_at', sa.DateTime(), nullable=True, comment='uptake within the attribution window'),
    sa.Column('dismissed_at', sa.DateTime(), nullable=True, comment='the advisor dismissed it'),
    sa.PrimaryKeyConstraint('tenant_id', 'rec_id', name=op.f('pk_recommendation_log')),
    comment='推荐日志：每次展示的推荐（排名、得分、倾向概率、策略版本）及其结果'
    )
    with op.batch_alter_table('recommendation_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recommendation_log_tenant_id_customer_id_shown_at'), ['tenant_id', 'customer_id', 'shown_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recommendation_log_tenant_id_item_id'), ['tenant_id', 'item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recommendation_log_tracking_token'), ['tracking_token'], unique=False)
    rls.secure(op.get_bind())  # both tables carry tenant_id


def downgrade() -> None:
    with op.batch_alter_table('recommendation_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recommendation_log_tracking_token'))
        batch_op.drop_index(batch_op.f('ix_recommendation_log_tenant_id_item_id'))
        batch_op.drop_index(batch_op.f('ix_recommendation_log_tenant_id_customer_id_shown_at'))

    op.drop_table('recommendation_log')
    op.drop_table('recommendation_lists')
