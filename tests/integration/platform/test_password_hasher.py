"""The password-hasher seam: production hashes with argon2id's recommended parameters; the
suite's cheap hasher is chosen only by code and never survives a production login."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import argon2
import pytest
from sqlalchemy import select, update

from caifu.adapters.sor.models import users as users_table
from caifu.services.container import Container
from caifu.services.platform import users

PASSWORD = "correct horse battery"


@pytest.fixture
def production_hasher() -> Iterator[None]:
    users.use_test_hasher(False)
    try:
        yield
    finally:
        users.use_test_hasher(True)


def test_a_fresh_process_hashes_with_argon2id_defaults() -> None:
    # a new interpreter, as `caifu serve` starts: nothing the suite set up is in it
    code = ("import json; from caifu.services.platform import users; h = users.hasher(); "
            "print(json.dumps([h.time_cost, h.memory_cost, h.parallelism, h.type.name, "
            "h is users.PRODUCTION_HASHER, h.hash('x' * 12)[:9]]))")
    env = {**os.environ, "PYTHONPATH": str(Path(users.__file__).parents[3])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    defaults = argon2.PasswordHasher()
    assert json.loads(out) == [defaults.time_cost, defaults.memory_cost, defaults.parallelism,
                               "ID", True, "$argon2id"]
    assert (defaults.time_cost, defaults.memory_cost) >= (2, 19 * 1024)  # OWASP's floor


def test_the_suite_runs_on_the_cheap_hasher_and_can_switch_back(production_hasher: None) -> None:
    assert users.hasher() is users.PRODUCTION_HASHER
    users.use_test_hasher()
    assert users.hasher() is users.TEST_HASHER
    assert users.TEST_HASHER.type is argon2.Type.ID  # same algorithm, minimum cost
    assert users.TEST_HASHER.time_cost < users.PRODUCTION_HASHER.time_cost
    assert users.TEST_HASHER.memory_cost < users.PRODUCTION_HASHER.memory_cost


def test_a_cheap_hash_is_rehashed_at_production_strength_on_login(
        sqlite_workspace: Container) -> None:
    c = sqlite_workspace
    users.use_test_hasher()
    users.add_user(c, "acme.ops", "ops", PASSWORD, tenant="acme")
    with c.engine.connect() as conn:
        cheap = conn.execute(select(users_table.c.password_hash)).scalar_one()
    assert cheap.startswith("$argon2id$") and "m=8,t=1,p=1" in cheap
    users.use_test_hasher(False)
    try:
        assert users.login(c, "acme.ops", PASSWORD) is not None
        assert users.login(c, "nobody.here", PASSWORD) is None
    finally:
        users.use_test_hasher(True)
    with c.engine.connect() as conn:
        strong = conn.execute(select(users_table.c.password_hash)).scalar_one()
    d = argon2.PasswordHasher()
    assert f"m={d.memory_cost},t={d.time_cost},p={d.parallelism}" in strong
    assert users.PRODUCTION_HASHER.verify(strong, PASSWORD)
    with c.engine.begin() as conn:  # a tampered hash still refuses, whichever hasher
        conn.execute(update(users_table).values(password_hash="$argon2id$garbage"))
    assert users.login(c, "acme.ops", PASSWORD) is None
