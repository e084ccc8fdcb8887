"""`caifu demo --serve`'s users: one per role, each seeing exactly its scope of the demo."""

from __future__ import annotations

from sqlalchemy import func, select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.repos import customer_scope as scope_repo
from caifu.services.demo.broker import create_demo_users
from caifu.services.platform import access, users


def test_one_user_per_role_with_its_scope(scored) -> None:  # type: ignore[no-untyped-def]
    c, _, _ = scored
    made = create_demo_users(c, "acme")
    assert sorted(u.role for u in made) == sorted(
        ["tenant_admin", "ops", "compliance", "branch_manager", "advisor", "platform_admin"])
    assert len({u.password for u in made}) == 6 and all(len(u.password) >= 16 for u in made)
    t = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t)
                             .where(t.c.tenant_id == "acme")).scalar_one()
        ids = conn.execute(select(t.c.customer_id, t.c.branch_id, t.c.advisor_id)
                           .where(t.c.tenant_id == "acme")).all()

    def seen(p) -> int:  # type: ignore[no-untyped-def]
        with c.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t)
                                .where(scope_repo.condition(access.scope_of(p)))).scalar_one()

    for u in made:
        p = users.login(c, u.user_id, u.password)
        assert p is not None and p.role == u.role
        n = seen(p)
        if u.role in ("tenant_admin", "ops", "compliance"):
            assert n == total == 4000
        elif u.role == "platform_admin":
            assert n == 0
        elif u.role == "branch_manager":
            assert n == sum(1 for r in ids if r.branch_id == p.branch_id) > 0
        else:  # advisor: his customers, plus any following him on WeCom
            own = sum(1 for r in ids if r.advisor_id == p.advisor_id)
            assert own > 0 and n >= own and n < total
