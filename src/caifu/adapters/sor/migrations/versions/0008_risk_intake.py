"""Risk news intake: documents, stories (exact and near duplicates folded), the MinHash LSH
bands, rejected documents and intake batches

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from caifu.adapters.sor import rls

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_batches',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False, comment='file | api | watch'),
    sa.Column('origin', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('received', sa.Integer(), nullable=False),
    sa.Column('stored', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('new_stories', sa.Integer(), nullable=False),
    sa.Column('folded_exact', sa.Integer(), nullable=False),
    sa.Column('folded_near', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'batch_id', name=op.f('pk_risk_batches')),
    comment='舆情接收批次：收到 = 入库 + 重复 + 拒绝'
    )
    op.create_table('risk_documents',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('document_id', sa.String(length=40), nullable=False, comment='from url and content hash'),
    sa.Column('story_id', sa.String(length=40), nullable=False),
    sa.Column('fold', sa.String(length=8), nullable=False, comment='first (founded the story) | exact | near: how it joined'),
    sa.Column('similarity', sa.Float(), nullable=True, comment='estimated Jaccard to the closest member (near)'),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False, comment='the feed or site as sent'),
    sa.Column('site', sa.String(length=200), nullable=False, comment="the URL's host"),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=False, comment='UTC'),
    sa.Column('published_zone', sa.String(length=40), nullable=False, comment='given (the input had an offset) | the tenant zone it was read in'),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=20), nullable=True),
    sa.Column('script', sa.String(length=20), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False, comment='SHA-256 of the normalised title and body'),
    sa.Column('signature', sa.LargeBinary(), nullable=False, comment='MinHash, 128 × uint32'),
    sa.Column('origin', sa.String(length=300), nullable=False, comment='file name and line, or api'),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'document_id', name=op.f('pk_risk_documents')),
    comment='舆情原文：新闻与公告（来源、网址、发布时间）'
    )
    op.create_index(op.f('ix_risk_documents_tenant_id_content_hash'), 'risk_documents', ['tenant_id', 'content_hash'], unique=False)
    op.create_index(op.f('ix_risk_documents_tenant_id_story_id'), 'risk_documents', ['tenant_id', 'story_id'], unique=False)
    op.create_table('risk_rejections',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False, comment='record number in the batch'),
    sa.Column('origin', sa.String(length=300), nullable=False, comment='file name, or api'),
    sa.Column('location', sa.String(length=40), nullable=False, comment='line 3, item 2, row 5'),
    sa.Column('field', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False, comment='the record as received (undecodable bytes as \\x escapes)'),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'batch_id', 'position', name=op.f('pk_risk_rejections')),
    comment='被拒绝的舆情文档（原样保留，附原因）'
    )
    op.create_index(op.f('ix_risk_rejections_tenant_id_received_at'), 'risk_rejections', ['tenant_id', 'received_at'], unique=False)
    op.create_table('risk_stories',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('story_id', sa.String(length=40), nullable=False, comment="from the first document's content hash: the same input, the same id"),
    sa.Column('title', sa.Text(), nullable=False, comment="the first document's title"),
    sa.Column('first_document_id', sa.String(length=40), nullable=False),
    sa.Column('first_published_at', sa.DateTime(), nullable=False, comment='UTC'),
    sa.Column('last_published_at', sa.DateTime(), nullable=False, comment='UTC'),
    sa.Column('document_count', sa.Integer(), nullable=False),
    sa.Column('site_count', sa.Integer(), nullable=False, comment='distinct sites carrying it'),
    sa.Column('event_type', sa.String(length=40), nullable=True, comment='filled by the event classification (later)'),
    sa.Column('companies_json', sa.Text(), nullable=True, comment='filled by the company linking (later)'),
    sa.Column('classified_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'story_id', name=op.f('pk_risk_stories')),
    comment='舆情故事：同一消息的各处转载合并为一条'
    )
    op.create_index(op.f('ix_risk_stories_tenant_id_last_published_at'), 'risk_stories', ['tenant_id', 'last_published_at'], unique=False)
    op.create_table('risk_story_bands',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('bucket', sa.String(length=18), nullable=False, comment='band number + digest of its rows'),
    sa.Column('document_id', sa.String(length=40), nullable=False),
    sa.Column('story_id', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'bucket', 'document_id', name=op.f('pk_risk_story_bands')),
    comment='近似重复索引（MinHash LSH 分桶）'
    )

    rls.secure(op.get_bind())


def downgrade() -> None:
    op.drop_table("risk_story_bands")
    op.drop_index(op.f("ix_risk_stories_tenant_id_last_published_at"), table_name="risk_stories")
    op.drop_table("risk_stories")
    op.drop_index(op.f("ix_risk_rejections_tenant_id_received_at"), table_name="risk_rejections")
    op.drop_table("risk_rejections")
    op.drop_index(op.f("ix_risk_documents_tenant_id_story_id"), table_name="risk_documents")
    op.drop_index(op.f("ix_risk_documents_tenant_id_content_hash"), table_name="risk_documents")
    op.drop_table("risk_documents")
    op.drop_table("risk_batches")
