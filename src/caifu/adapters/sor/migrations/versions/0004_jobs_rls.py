"""background jobs; row-level security on every tenant table (PostgreSQL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from caifu.adapters.sor import rls

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False,
                  comment="ingest | build | score | value | lifecycle | redemption"),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False,
                  comment="queued | running | succeeded | failed"),
        sa.Column("result_json", sa.Text(), nullable=True,
                  comment="what the job did (counts, dates), when succeeded"),
        sa.Column("error", sa.Text(), nullable=True, comment="why it failed, for the user"),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_jobs")),
        comment="后台作业：入库、构建、评分等，由服务进程依次执行",
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_tenant_id_submitted_at"),
                              ["tenant_id", "submitted_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_status_submitted_at"),
                              ["status", "submitted_at"], unique=False)
    rls.secure(op.get_bind())


def downgrade() -> None:
    op.drop_table("jobs")
