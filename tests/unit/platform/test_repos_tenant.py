"""Every repository query takes the tenant: ``adapters/sor/repos`` has no query path without one.

A public function that takes a connection must take ``tenant`` right after it, or a
``customer_scope.Scope`` (the caller's tenant and which of its customers he may see). The
exceptions are named here with the reason, so a new one is a decision someone wrote down, not
an accident.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import caifu.adapters.sor.repos as repos
from caifu.adapters.sor.repos.customer_scope import Scope

# function -> why it may run without a tenant
WITHOUT_TENANT = {
    "scrm_campaigns.due_runs_all_tenants": "the scheduler's scan; returns each run's tenant",
    "scrm_campaigns.contact_by_token": "a tracking link carries only its token; returns the "
                                       "row's tenant",
    "profiles.bulk_insert": "writes column data the caller built, tenant column included",
    "recommend.by_token": "a sent recommendation's tracking link carries only its token; "
                          "returns the row's tenant",
}


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(repos.__path__))


def _query_functions() -> list[tuple[str, inspect.Signature]]:
    out = []
    for name in _modules():
        module = importlib.import_module(f"caifu.adapters.sor.repos.{name}")
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__ or fname.startswith("_"):
                continue  # imported, or a private helper of a public query
            sig = inspect.signature(fn)
            params = list(sig.parameters)
            if params and params[0] == "conn":
                out.append((f"{name}.{fname}", sig))
    return out


def test_the_package_holds_the_context_repositories() -> None:
    assert _modules() == ["customer_scope", "ingest", "metrics", "profiles", "quality",
                          "recommend", "risk", "scrm", "scrm_campaigns", "wecom_groups"]
    assert len(_query_functions()) >= 90


@pytest.mark.parametrize(("name", "sig"), _query_functions(), ids=lambda x: str(x))
def test_every_query_takes_the_tenant_after_the_connection(name: str,
                                                           sig: inspect.Signature) -> None:
    params = list(sig.parameters)
    if name in WITHOUT_TENANT:
        assert "tenant" not in params, f"{name} takes a tenant now: drop its exception"
        return
    if params[1:2] == ["scope"]:
        assert sig.parameters["scope"].annotation in ("Scope", Scope), name
        return
    assert params[1:2] == ["tenant"], f"{name}{sig}: the tenant must follow the connection"
    assert sig.parameters["tenant"].default is inspect.Parameter.empty, \
        f"{name}: the tenant may not default"


def test_the_exceptions_exist() -> None:
    names = {n for n, _ in _query_functions()}
    assert set(WITHOUT_TENANT) <= names


def test_a_scope_without_a_tenant_or_customers_matches_nothing() -> None:
    from sqlalchemy import false

    from caifu.adapters.sor.repos.customer_scope import condition

    assert condition(Scope(tenant=None, kind="tenant")).compare(false())
    assert condition(Scope(tenant="acme", kind="none")).compare(false())
    with pytest.raises(ValueError, match="unknown scope"):
        condition(Scope(tenant="acme", kind="everyone"))
