"""Repositories: the queries on system-of-record tables that several services read or write,
one module per bounded context, so each table's queries and tenant filter live in one place.

Every function takes the connection and the tenant explicitly (there is no query path without
a tenant; the exceptions, a scheduler scan and the tracking-token lookups, are named in
``scrm_campaigns`` and ``recommend`` and return each row's tenant) and returns plain rows,
dicts or Arrow tables. The service opens the connection or transaction; a query only one use case runs may
stay beside that use case.

    ingest           contract tables in bulk (keys, rows, insert, update), ingest_log,
                     ingest_quarantine
    profiles         profile_serving, tag_definitions, tag_assignments, tag_history, segments,
                     segment_sizes, customer_cards; the customer master as profiles read it
    scrm             wecom_follows, advisors, customers and suitability_assessments as the
                     SCRM reads them; wecom_apps, wecom_links, preference_groups(_members),
                     content_items
    wecom_groups     wecom_groups, wecom_group_members, wecom_corp_tags: WeCom's mirror as
                     callbacks and API syncs write it
    customer_scope   the scope condition on customers (role → which customers), visibility,
                     customer search (customers, wecom_follows, restricted_customers,
                     tag_assignments, customer_cards)
    scrm_campaigns   campaigns, campaign_runs, campaign_decisions, campaign_contacts,
                     contact_ways
    risk             risk_documents, risk_stories, risk_story_bands, risk_rejections,
                     risk_batches: the news intake writes them, the API and CLI read them
    recommend        recommendation_lists, recommendation_log; content_items, fund_products
                     and customers as a served list is judged again against them
    quality          ingest_profiles (beside ingest_log), quality_alerts: ingest writes the
                     profiles, services/quality checks and reads both

Tables that several services touch (``grep`` of each table of ``models``/``scrm_models`` and
of the contract tables across ``services/`` before this package existed):

    tag_definitions          profiles/{build,segments}, scrm/{sidebar,tag_mirror,pref_groups},
                             value/{redemption,scoring}, ingest/realtime
    tag_assignments          scrm/{tag_mirror,pref_groups}, platform/access
    segments                 profiles/{build,segments}, scrm/campaigns, platform/access,
                             demo/broker
    customer_cards           profiles/{cards,customers}, platform/access, demo/scrm
    restricted_customers     profiles/cards, platform/access, compliance/privacy
    wecom_follows            scrm/{campaigns,funnel,pref_groups,identity_links,sidebar,
                             tag_mirror,callback_apply}, platform/access, profiles/build,
                             compliance/chat_review, demo/scrm
    advisors                 scrm/{campaigns,sidebar,tag_mirror,identity_links,callback_apply},
                             platform/users, compliance/chat_review, demo/scrm
    customers                scrm/{identity_links,campaigns,funnel,pref_groups},
                             profiles/{build,customers}, platform/{access,jobs},
                             compliance/privacy, value/*, demo/*
    suitability_assessments  scrm/{campaigns,pref_groups,sidebar}, profiles/build,
                             compliance/privacy
    content_items            scrm/{campaigns,funnel,sidebar}, demo/scrm
    campaigns, campaign_runs, campaign_decisions, campaign_contacts
                             scrm/{campaigns,funnel}, demo/scrm
    contact_ways             scrm/campaigns, demo/scrm
    preference_groups(_members)  scrm/{campaigns,pref_groups}
    wecom_groups             scrm/{campaigns,pref_groups,callback_apply}, demo/scrm, cli
    wecom_group_members      scrm/{pref_groups,callback_apply}
    wecom_corp_tags          scrm/{tag_mirror,callback_apply}
    wecom_apps               scrm/{wecom_app,callback_apply}
    wecom_links              scrm/identity_links, demo/scrm
    wecom_callbacks          scrm/{callback_intake,callback_apply}
    ingest_log               ingest/{load,uploads}, compliance/privacy
    ingest_quarantine        ingest/uploads, compliance/privacy
    event_inbox              ingest/realtime, compliance/privacy
    audit_log                compliance/{audit,privacy}
    users                    platform/users, scrm/callback_apply, demo/broker
    jobs                     platform/jobs, ingest/uploads, value/views (through Jobs),
                             demo/broker

Moved here so far: every query of ``services/scrm/{campaigns,funnel,pref_groups,
identity_links,tag_mirror,sidebar,wecom_app}``, ``services/profiles/*`` and
``services/ingest/{load,realtime}`` (the ``adapters/sor/repo.py`` and ``serving.py`` shims are
gone), chat review's advisor and follow reads, and the WeCom callbacks' advisor lookup and
follow writes.

Still inline, each with its reason:
    wecom_callbacks          callback_intake inserts, callback_apply drains: a queue with
                             one writer and one reader, kept with the WeCom callback code
    jobs, users, api_keys, audit_log
                             one service module queries each; the others go through it
                             (``Jobs``, ``users``, ``audit.append``)
    every table              ``compliance/privacy``'s discovery for erasure and export
    customers                ``demo/broker`` (busiest branch and advisor) and ``demo/scrm``
                             (seeds wecom_links, contact_ways, campaign_contacts as demo
                             data): one use case each; ``value/{redemption,scoring}``
                             read through the Ibis session, not SQLAlchemy
"""
