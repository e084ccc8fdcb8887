"""Risk alerts keep their long text once per tenant: the evidence (the same for every holder
of a story's company) in risk_alert_evidence, the advisor message (a few hundred wordings for
100k holders) in risk_alert_messages; an alert references them by content hash, in the
place the text had (readers and exports get the same columns in the same order)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

from caifu.adapters.sor import rls
from caifu.adapters.sor.repos.risk import text_key

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CHUNK = 10_000
TEXT = ("evidence_json", "message", "message_may_send", "message_notes")
KEYS = ("evidence_hash", "message_hash")
AFTER = ("repeat_story_ids_json", "created_at", "value_at_risk", "routes_json")  # 0009, 0010
COMMENT = "舆情预警：一个事件 × 一位持仓客户"  # a rebuilt table's own (PostgreSQL)

alerts = sa.table("risk_alerts", sa.column("tenant_id", sa.String), sa.column("alert_id", sa.String),
                  sa.column("evidence_json", sa.Text), sa.column("message", sa.Text),
                  sa.column("message_may_send", sa.Boolean),
                  sa.column("message_notes", sa.Text),
                  sa.column("evidence_hash", sa.String), sa.column("message_hash", sa.String))
evidence = sa.table("risk_alert_evidence", sa.column("tenant_id", sa.String),
                    sa.column("evidence_hash", sa.String), sa.column("evidence_json", sa.Text))
messages = sa.table("risk_alert_messages", sa.column("tenant_id", sa.String),
                    sa.column("message_hash", sa.String), sa.column("message", sa.Text),
                    sa.column("message_may_send", sa.Boolean),
                    sa.column("message_notes", sa.Text))


def _alert_chunks(bind: sa.Connection) -> Iterator[list[Any]]:
    """Every alert's key and text, in primary-key order, CHUNK rows at a time (keyset
    pagination: an offset would rescan)."""
    after: tuple[str, str] = ("", "")
    while True:
        rows = bind.execute(sa.select(alerts.c.tenant_id, alerts.c.alert_id,
                                      *(alerts.c[c] for c in TEXT))
                            .where(sa.tuple_(alerts.c.tenant_id, alerts.c.alert_id) > after)
                            .order_by(alerts.c.tenant_id, alerts.c.alert_id)
                            .limit(CHUNK)).all()
        if not rows:
            return
        yield list(rows)
        after = (rows[-1].tenant_id, rows[-1].alert_id)


def upgrade() -> None:
    op.create_table('risk_alert_evidence',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('evidence_hash', sa.String(length=32), nullable=False, comment='of evidence_json'),
    sa.Column('evidence_json', sa.Text(), nullable=False, comment="the linked span (name, rule, score, sentence) and the story's sources"),
    sa.PrimaryKeyConstraint('tenant_id', 'evidence_hash', name=op.f('pk_risk_alert_evidence')),
    comment='舆情预警证据：同一故事同一公司的各条预警共用一份'
    )
    op.create_table('risk_alert_messages',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('message_hash', sa.String(length=32), nullable=False, comment='of the message, message_may_send and message_notes'),
    sa.Column('message', sa.Text(), nullable=False, comment='the factual warning an advisor may send'),
    sa.Column('message_may_send', sa.Boolean(), nullable=False),
    sa.Column('message_notes', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'message_hash', name=op.f('pk_risk_alert_messages')),
    comment='投顾提示话术：相同措辞的预警共用一份'
    )
    with op.batch_alter_table('risk_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_hash', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('message_hash', sa.String(length=32), nullable=True))

    # each alert's text moves to the shared tables (once per tenant and content); the alert
    # keeps the keys — computed here, in Python: neither SQLite nor SQL has the hash
    bind = op.get_bind()
    seen_evidence: set[tuple[str, str]] = set()
    seen_messages: set[tuple[str, str]] = set()
    for rows in _alert_chunks(bind):
        new_evidence, new_messages, keys = [], [], []
        for r in rows:
            ek = text_key(r.evidence_json)
            mk = text_key(r.message, bool(r.message_may_send), r.message_notes)
            if (r.tenant_id, ek) not in seen_evidence:
                seen_evidence.add((r.tenant_id, ek))
                new_evidence.append({"tenant_id": r.tenant_id, "evidence_hash": ek,
                                     "evidence_json": r.evidence_json})
            if (r.tenant_id, mk) not in seen_messages:
                seen_messages.add((r.tenant_id, mk))
                new_messages.append({"tenant_id": r.tenant_id, "message_hash": mk,
                                     **{c: r._mapping[c] for c in TEXT[1:]}})
            keys.append({"t": r.tenant_id, "a": r.alert_id, "ek": ek, "mk": mk})
        for table, new_rows in ((evidence, new_evidence), (messages, new_messages)):
            if new_rows:
                bind.execute(table.insert(), new_rows)
        bind.execute(alerts.update()
                     .where(alerts.c.tenant_id == sa.bindparam("t"),
                            alerts.c.alert_id == sa.bindparam("a"))
                     .values(evidence_hash=sa.bindparam("ek"), message_hash=sa.bindparam("mk")),
                     keys)

    # rebuilt (PostgreSQL too) so the keys stand where the text stood: an export of the table
    # as the database orders it lists the same columns in the same order as before
    with op.batch_alter_table('risk_alerts', schema=None, recreate='always',
                              partial_reordering=[('customer_risk_level', *KEYS, *AFTER)],
                              table_kwargs={'comment': COMMENT}) as batch_op:
        batch_op.alter_column('evidence_hash', existing_type=sa.String(length=32), nullable=False, comment='its evidence in risk_alert_evidence (the same for the story\'s holders)')
        batch_op.alter_column('message_hash', existing_type=sa.String(length=32), nullable=False, comment='its advisor message in risk_alert_messages (one per distinct wording)')
        for name in TEXT:
            batch_op.drop_column(name)

    rls.secure(bind)  # the new tables, and risk_alerts rebuilt


def downgrade() -> None:
    with op.batch_alter_table('risk_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_json', sa.Text(), nullable=True, comment="the linked span (name, rule, score, sentence) and the story's sources"))
        batch_op.add_column(sa.Column('message', sa.Text(), nullable=True, comment='the factual warning an advisor may send'))
        batch_op.add_column(sa.Column('message_may_send', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('message_notes', sa.Text(), nullable=True))
    # the text back into every alert (a key lookup per alert)
    same_evidence = sa.and_(evidence.c.tenant_id == alerts.c.tenant_id,
                            evidence.c.evidence_hash == alerts.c.evidence_hash)
    same_message = sa.and_(messages.c.tenant_id == alerts.c.tenant_id,
                           messages.c.message_hash == alerts.c.message_hash)
    op.execute(alerts.update().values(
        evidence_json=sa.select(evidence.c.evidence_json).where(same_evidence).scalar_subquery(),
        **{c: sa.select(messages.c[c]).where(same_message).scalar_subquery()
           for c in ("message", "message_may_send", "message_notes")}))
    with op.batch_alter_table('risk_alerts', schema=None, recreate='always',
                              partial_reordering=[('customer_risk_level', *TEXT, *AFTER)],
                              table_kwargs={'comment': COMMENT}) as batch_op:
        for name in TEXT:
            batch_op.alter_column(name, existing_type=sa.Boolean() if name == 'message_may_send' else sa.Text(), nullable=False)
        batch_op.drop_column('message_hash')
        batch_op.drop_column('evidence_hash')
    op.drop_table('risk_alert_messages')
    op.drop_table('risk_alert_evidence')
    rls.secure(op.get_bind())
