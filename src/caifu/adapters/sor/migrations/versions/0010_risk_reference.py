"""Risk reference data and exposure through funds: a tenant's company aliases (former names,
nicknames) and party relations for the company linker; alerts carry every route (a direct
position and funds whose disclosed top holdings name the security) and their value at risk

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from caifu.adapters.sor import rls

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_aliases',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False, comment='the name as written in news'),
    sa.Column('code', sa.String(length=6), nullable=False, comment='the listed company it stands for'),
    sa.Column('kind', sa.String(length=8), nullable=False, comment='former (a former name) | alias'),
    sa.Column('valid_from', sa.Date(), nullable=True, comment='a former name: first day it was the name'),
    sa.Column('valid_to', sa.Date(), nullable=True, comment='a former name: last day it was the name'),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('loaded_at', sa.DateTime(), nullable=False),
    sa.Column('loaded_by', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'name', 'code', name=op.f('pk_risk_aliases')),
    comment='租户的公司别名与曾用名（舆情公司识别）'
    )
    op.create_table('risk_relations',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('party', sa.String(length=200), nullable=False, comment='an unlisted party: controlling shareholder, bond issuer, subsidiary'),
    sa.Column('code', sa.String(length=6), nullable=False, comment='the listed company it is tied to'),
    sa.Column('relation', sa.String(length=40), nullable=False, comment='controlling_shareholder | shareholder | subsidiary | bond_issuer | …'),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('loaded_at', sa.DateTime(), nullable=False),
    sa.Column('loaded_by', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'party', 'code', name=op.f('pk_risk_relations')),
    comment='租户的关联方表：非上市主体 → 上市公司'
    )
    with op.batch_alter_table('risk_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('value_at_risk', sa.Numeric(precision=18, scale=2), nullable=True, comment='every route: position value + fund values × disclosed % of NAV'))
        batch_op.add_column(sa.Column('routes_json', sa.Text(), nullable=True, comment="each route: via, value at risk, value, cost, P&L; a fund's code, name, report date, % of NAV"))
        batch_op.alter_column('via', existing_type=sa.String(length=12), type_=sa.String(length=255), existing_nullable=False, comment='the routes: position, fund:<code>, joined with +', existing_comment="position (a fund's holdings: later)")
        batch_op.alter_column('snapshot_date', existing_type=sa.Date(), existing_nullable=False, comment='the positions snapshot read (fund routes only: the day valued)', existing_comment='the positions snapshot read')
        batch_op.alter_column('quantity', existing_type=sa.Numeric(precision=20, scale=0), nullable=True, comment="the direct position's; null: funds only")
        batch_op.alter_column('market_value', existing_type=sa.Numeric(precision=18, scale=2), nullable=True, comment="the direct position's; null: funds only", existing_comment='the value at risk')
        batch_op.alter_column('cost', existing_type=sa.Numeric(precision=18, scale=2), nullable=True, comment="the direct position's; null: funds only")
        batch_op.alter_column('unrealised_pnl', existing_type=sa.Numeric(precision=18, scale=2), nullable=True, comment="the direct position's; null: funds only")
    # alerts raised before: one route, the direct position
    op.execute("UPDATE risk_alerts SET value_at_risk = market_value WHERE value_at_risk IS NULL")

    rls.secure(op.get_bind())


def downgrade() -> None:
    # fund-only alerts have no place in the old shape; the rest keep their direct position
    op.execute("DELETE FROM risk_task_events WHERE EXISTS (SELECT 1 FROM risk_tasks t JOIN "
               "risk_alerts a ON a.tenant_id = t.tenant_id AND a.alert_id = t.alert_id WHERE "
               "t.tenant_id = risk_task_events.tenant_id AND t.task_id = risk_task_events.task_id "
               "AND a.market_value IS NULL)")
    op.execute("DELETE FROM risk_tasks WHERE EXISTS (SELECT 1 FROM risk_alerts a WHERE "
               "a.tenant_id = risk_tasks.tenant_id AND a.alert_id = risk_tasks.alert_id AND "
               "a.market_value IS NULL)")
    op.execute("DELETE FROM risk_alerts WHERE market_value IS NULL")
    op.execute("UPDATE risk_alerts SET via = 'position'")
    with op.batch_alter_table('risk_alerts', schema=None) as batch_op:
        batch_op.alter_column('unrealised_pnl', existing_type=sa.Numeric(precision=18, scale=2), nullable=False, comment=None, existing_comment="the direct position's; null: funds only")
        batch_op.alter_column('cost', existing_type=sa.Numeric(precision=18, scale=2), nullable=False, comment=None, existing_comment="the direct position's; null: funds only")
        batch_op.alter_column('market_value', existing_type=sa.Numeric(precision=18, scale=2), nullable=False, comment='the value at risk', existing_comment="the direct position's; null: funds only")
        batch_op.alter_column('quantity', existing_type=sa.Numeric(precision=20, scale=0), nullable=False, comment=None, existing_comment="the direct position's; null: funds only")
        batch_op.alter_column('snapshot_date', existing_type=sa.Date(), existing_nullable=False, comment='the positions snapshot read', existing_comment='the positions snapshot read (fund routes only: the day valued)')
        batch_op.alter_column('via', existing_type=sa.String(length=255), type_=sa.String(length=12), existing_nullable=False, comment="position (a fund's holdings: later)", existing_comment='the routes: position, fund:<code>, joined with +')
        batch_op.drop_column('routes_json')
        batch_op.drop_column('value_at_risk')

    op.drop_table('risk_relations')
    op.drop_table('risk_aliases')
