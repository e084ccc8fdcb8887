"""The action table of ``core/roles``: what it says, that routes use it instead of checking
roles by hand, that every action is used, and that ``docs/api.md`` shows it as it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from caifu.core import roles
from caifu.core.errors import ConfigError, PermissionDeniedError
from caifu.core.identity import CAN_UNMASK, ROLES

SRC = Path(__file__).resolve().parents[3] / "src" / "caifu"
DOC = SRC.parents[1] / "docs" / "api.md"
START, END = "<!-- roles:start -->", "<!-- roles:end -->"


def test_the_six_roles_of_the_design_and_nothing_else() -> None:
    assert ROLES == roles.ROLES == ("platform_admin", "tenant_admin", "ops", "branch_manager",
                                    "advisor", "compliance")
    for name, action in roles.POLICY.items():
        assert action.roles and action.roles <= set(ROLES), name
        assert action.doing and not action.doing.endswith("."), name


def test_check_refuses_naming_the_roles_that_may() -> None:
    roles.check("compliance", "privacy.handle")  # allowed: nothing happens
    with pytest.raises(PermissionDeniedError) as exc:
        roles.check("advisor", "privacy.handle")
    assert str(exc.value) == ("a advisor may not handle data-subject requests; "
                              "roles: tenant_admin, compliance")
    with pytest.raises(PermissionDeniedError, match="roles: compliance$"):
        roles.check("tenant_admin", "chat_flags.decide")
    assert roles.allowed("jobs.read") == ("tenant_admin", "ops", "compliance")
    assert roles.may("ops", "events.push") and not roles.may("compliance", "events.push")


def test_an_unknown_action_is_an_error_not_a_refusal() -> None:
    for call in (roles.allowed, lambda a: roles.may("ops", a), lambda a: roles.check("ops", a)):
        with pytest.raises(ConfigError, match="unknown action 'jobs.delete'"):
            call("jobs.delete")


def test_what_used_to_be_scattered_sets_is_the_table() -> None:
    # the sets the route modules and identity held before the table, role for role
    before = {"ingest.write": {"tenant_admin", "ops"}, "events.push": {"tenant_admin", "ops"},
              "jobs.submit": {"tenant_admin", "ops"},
              "ingest.read": {"tenant_admin", "ops", "compliance"},
              "jobs.read": {"tenant_admin", "ops", "compliance"},
              "privacy.handle": {"compliance", "tenant_admin"},
              "chat_flags.read": {"compliance", "tenant_admin"},
              "chat_flags.decide": {"compliance"}, "chats.intake": {"tenant_admin", "ops"},
              # + platform_admin: the refusals no tenant owns (unknown tenant, no WeCom app)
              "wecom.rejections.read": {"tenant_admin", "ops", "compliance", "platform_admin"},
              "campaigns.run": {"ops", "tenant_admin"}, "campaigns.send": {"ops", "tenant_admin"},
              "campaigns.read": {"ops", "tenant_admin", "compliance"},
              "customers.unmask": {"compliance"}, "customers.restricted": {"compliance"}}
    for action, was in before.items():
        assert set(roles.allowed(action)) == was, action
    assert CAN_UNMASK == {"compliance"}


def _api_modules() -> list[Path]:
    return sorted((SRC / "api").rglob("*.py"))


def _role_comparisons(tree: ast.AST) -> list[int]:
    """Lines comparing something's ``.role`` (``p.role in …``, ``p.role != "x"`` …)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Attribute) and o.attr == "role" for o in operands):
                found.append(node.lineno)
    return found


def test_the_detector_finds_a_hand_written_role_check() -> None:
    for code in ('if p.role not in {"ops"}: pass', 'if p.role != "compliance": pass',
                 'ok = "ops" == principal.role', 'ok = p.role in READERS'):
        assert _role_comparisons(ast.parse(code)) == [1], code


def test_no_route_module_checks_a_role_by_hand() -> None:
    offenders = {str(path.relative_to(SRC)): lines for path in _api_modules()
                 if (lines := _role_comparisons(ast.parse(path.read_text("utf-8"))))}
    assert offenders == {}, "use Depends(require(<action>)) from api/deps instead"


def _literals(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text("utf-8")))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_every_action_in_the_table_is_used_somewhere() -> None:
    used: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path != SRC / "core" / "roles.py":
            used |= _literals(path) & set(roles.POLICY)
    assert set(roles.POLICY) - used == set(), "an action no route nor service asks for"


def test_docs_api_md_shows_the_table_as_it_is() -> None:
    text = DOC.read_text("utf-8")
    assert START in text and END in text, f"{DOC}: the table goes between {START} and {END}"
    shown = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert shown == roles.markdown().strip(), (
        "docs/api.md is out of date; paste caifu.core.roles.markdown() between the markers")
