"""SCRM on WeCom: callback inbox and rejection counts, groups, corp tags, identity links, chat
compliance flags, preference groups, campaign runs with decisions and funnels, channel QR
codes; the follow relation records chat-archive consent

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from caifu.adapters.sor import rls

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_contacts',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('advisor_id', sa.String(length=32), nullable=True),
    sa.Column('external_userid', sa.String(length=64), nullable=True),
    sa.Column('msgid', sa.String(length=64), nullable=True, comment='WeCom mass-send task'),
    sa.Column('tracking_token', sa.String(length=32), nullable=True, comment="the customer's tracking link"),
    sa.Column('targeted_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(), nullable=True),
    sa.Column('opened_at', sa.DateTime(), nullable=True),
    sa.Column('clicked_at', sa.DateTime(), nullable=True),
    sa.Column('converted_at', sa.DateTime(), nullable=True),
    sa.Column('conversion', sa.String(length=32), nullable=True, comment='account_opened | funded | product_bought …'),
    sa.PrimaryKeyConstraint('tenant_id', 'campaign_id', 'customer_id', name=op.f('pk_campaign_contacts')),
    comment='活动漏斗：目标→发送→送达→打开→点击→转化'
    )
    with op.batch_alter_table('campaign_contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_contacts_tenant_id_customer_id'), ['tenant_id', 'customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_contacts_tracking_token'), ['tracking_token'], unique=False)

    op.create_table('campaign_decisions',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False, comment='send | blocked'),
    sa.Column('rule', sa.String(length=40), nullable=False, comment='the deciding rule'),
    sa.Column('reasons_json', sa.Text(), nullable=False),
    sa.Column('investor_level', sa.String(length=4), nullable=True),
    sa.Column('product_level', sa.String(length=4), nullable=True),
    sa.Column('rule_version', sa.String(length=32), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'campaign_id', 'customer_id', name=op.f('pk_campaign_decisions')),
    comment='发送前决策（适当性、同意、频控、合规），附规则版本'
    )
    op.create_table('campaign_runs',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('segment_id', sa.String(length=64), nullable=True, comment='the segment targeted'),
    sa.Column('status', sa.String(length=10), nullable=False, comment='draft | gated | sent | closed'),
    sa.Column('scheduled_at', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('attribution_days', sa.Integer(), nullable=False),
    sa.Column('rule_version', sa.String(length=32), nullable=True, comment='gate rules the decisions were made under'),
    sa.Column('target_json', sa.Text(), nullable=True, comment='what was targeted: segment, customers, group or QR advisors; the cap'),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'campaign_id', name=op.f('pk_campaign_runs')),
    comment='营销活动执行（客群 × 内容 × 渠道 × 时间）'
    )
    op.create_table('chat_compliance_flags',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('flag_id', sa.String(length=40), nullable=False, comment='stable per message and finding'),
    sa.Column('msg_id', sa.String(length=64), nullable=False),
    sa.Column('msg_time', sa.DateTime(), nullable=False),
    sa.Column('advisor_id', sa.String(length=32), nullable=False),
    sa.Column('external_userid', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=True),
    sa.Column('sender', sa.String(length=10), nullable=False, comment='advisor | customer'),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('phrase', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False, comment='review | alert'),
    sa.Column('excerpt', sa.Text(), nullable=False, comment='context window, numbers masked'),
    sa.Column('lexicon_version', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False, comment='open | confirmed | dismissed'),
    sa.Column('reviewed_by', sa.String(length=100), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'flag_id', name=op.f('pk_chat_compliance_flags')),
    comment='会话合规：待复核的违规话术与敏感信息提醒'
    )
    with op.batch_alter_table('chat_compliance_flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_compliance_flags_tenant_id_status_created_at'), ['tenant_id', 'status', 'created_at'], unique=False)

    op.create_table('contact_ways',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('config_id', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=False, comment='comes back in add_external_contact'),
    sa.Column('campaign_id', sa.String(length=40), nullable=True),
    sa.Column('advisor_id', sa.String(length=32), nullable=True),
    sa.Column('qr_code', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'config_id', name=op.f('pk_contact_ways')),
    comment='渠道活码（State 归因）'
    )
    with op.batch_alter_table('contact_ways', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_ways_tenant_id_state'), ['tenant_id', 'state'], unique=False)

    op.create_table('preference_group_members',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False, comment='invite | member | left | excluded'),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('risk_level', sa.String(length=4), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'group_id', 'customer_id', name=op.f('pk_preference_group_members')),
    comment='偏好客户群成员计划：邀请、在群、已退、排除'
    )
    op.create_table('preference_groups',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('rule', sa.Text(), nullable=False, comment='tag expression choosing the members'),
    sa.Column('level_policy', sa.String(length=16), nullable=False, comment='lowest_member | homogeneous: how content suitability is judged'),
    sa.Column('risk_level', sa.String(length=4), nullable=True, comment='homogeneous groups: the one C level admitted'),
    sa.Column('chat_id', sa.String(length=64), nullable=True, comment='the WeCom group that carries it'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'group_id', name=op.f('pk_preference_groups')),
    comment='偏好客户群规划（按标签）'
    )
    op.create_table('wecom_apps',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('corp_id', sa.String(length=64), nullable=False, comment='receiveid of callbacks'),
    sa.Column('agent_id', sa.String(length=32), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False, comment='callback signature token'),
    sa.Column('encoding_aes_key', sa.String(length=43), nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False, comment='app secret for gettoken'),
    sa.Column('api_base_url', sa.String(length=200), nullable=True, comment="a gateway or the fake; default WeCom's"),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_wecom_apps')),
    comment='企业微信应用配置（每租户）'
    )
    op.create_table('wecom_callbacks',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False, comment="SHA-256 of the decrypted XML: WeCom's retries collapse onto one row"),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('create_time', sa.DateTime(), nullable=True, comment="the event's CreateTime (UTC)"),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('change_type', sa.String(length=40), nullable=False),
    sa.Column('xml', sa.Text(), nullable=False, comment='the decrypted event'),
    sa.Column('status', sa.String(length=10), nullable=False, comment='pending | applied | failed'),
    sa.Column('error', sa.Text(), nullable=True, comment='why applying failed'),
    sa.Column('applied_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'digest', name=op.f('pk_wecom_callbacks')),
    comment='企业微信回调收件箱：验签解密后落库，异步处理'
    )
    with op.batch_alter_table('wecom_callbacks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wecom_callbacks_status_received_at'), ['status', 'received_at'], unique=False)

    op.create_table('wecom_corp_tags',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('tag_id', sa.String(length=64), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=True),
    sa.Column('group_name', sa.String(length=100), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('caifu_tag_id', sa.String(length=64), nullable=True, comment='the caifu tag this WeCom tag mirrors'),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'tag_id', name=op.f('pk_wecom_corp_tags')),
    comment='企业微信企业标签（含与本系统标签的映射）'
    )
    op.create_table('wecom_group_members',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('chat_id', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=64), nullable=False, comment='userid or external_userid'),
    sa.Column('member_type', sa.String(length=10), nullable=False, comment='internal | external'),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('joined_at', sa.DateTime(), nullable=True),
    sa.Column('join_scene', sa.Integer(), nullable=True),
    sa.Column('left_at', sa.DateTime(), nullable=True),
    sa.Column('quit_scene', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'chat_id', 'member_id', name=op.f('pk_wecom_group_members')),
    comment='客户群成员（含已退群）'
    )
    with op.batch_alter_table('wecom_group_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wecom_group_members_tenant_id_member_id'), ['tenant_id', 'member_id'], unique=False)

    op.create_table('wecom_groups',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('chat_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('owner', sa.String(length=64), nullable=True, comment='WeCom userid of the owner'),
    sa.Column('notice', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False, comment='active | dismissed'),
    sa.Column('member_version', sa.String(length=64), nullable=True, comment='CurMemVer last applied'),
    sa.Column('needs_resync', sa.Boolean(), nullable=False, comment='a version gap was seen: missed events, resync through the API'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'chat_id', name=op.f('pk_wecom_groups')),
    comment='企业微信客户群'
    )
    op.create_table('wecom_links',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('external_userid', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False, comment='linked | review | rejected | unlinked'),
    sa.Column('score', sa.Float(), nullable=False, comment='strength of the evidence, 0..1'),
    sa.Column('evidence_json', sa.Text(), nullable=False, comment='each piece of evidence, masked'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_by', sa.String(length=100), nullable=True, comment='system or the reviewer'),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'external_userid', 'customer_id', name=op.f('pk_wecom_links')),
    comment='外部联系人与客户的身份关联（证据、复核、可撤销）'
    )
    with op.batch_alter_table('wecom_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wecom_links_tenant_id_customer_id'), ['tenant_id', 'customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_wecom_links_tenant_id_status'), ['tenant_id', 'status'], unique=False)

    op.create_table('wecom_rejections',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('last_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'day', 'reason', name=op.f('pk_wecom_rejections')),
    comment='被拒绝的回调计数（按租户、日期、原因）'
    )
    with op.batch_alter_table('wecom_follows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archive_consent_at', sa.DateTime(), nullable=True, comment='同意会话存档时间（UTC）'))
    rls.secure(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("wecom_follows", schema=None) as batch_op:
        batch_op.drop_column("archive_consent_at")
    op.drop_table("contact_ways")
    op.drop_table("campaign_contacts")
    op.drop_table("campaign_decisions")
    op.drop_table("campaign_runs")
    op.drop_table("preference_group_members")
    op.drop_table("preference_groups")
    op.drop_table("chat_compliance_flags")
    op.drop_table("wecom_links")
    op.drop_table("wecom_corp_tags")
    op.drop_table("wecom_group_members")
    op.drop_table("wecom_groups")
    op.drop_table("wecom_rejections")
    op.drop_table("wecom_callbacks")
    op.drop_table("wecom_apps")
