"""The taxonomy: the ids the issue requires, and a tenant extension's errors."""

from __future__ import annotations

import pytest

from caifu.core.errors import ConfigError
from caifu.text.taxonomy import Taxonomy, default_taxonomy

REQUIRED = {  # issue 14, "A batch interface"
    "interests": "fund bond hk_stock etf chinext star_market bse sse50 csi300 new_energy "
                 "semiconductor liquor bank gold",
    "intents": "consult open_account open_permission level2 redeem add_position "
               "reduce_position transfer_out fee_complaint",
    "emotions": "complaint loss_anxiety relief positive anger",
    "violations": "guaranteed_return certainty profit_sharing off_platform inside_info "
                  "private_dealing misleading_performance",
}


def test_default_taxonomy_has_every_required_id_on_its_side() -> None:
    t = default_taxonomy()
    assert t.version == "2026.12"
    for family, ids in REQUIRED.items():
        assert set(ids.split()) <= set(t.ids(family)), family
    assert t.families_of("customer") == ("interests", "intents", "emotions")
    assert t.families_of("advisor") == ("violations",)
    assert t.family_of("chinext") == "interests" and t.family_of("nope") is None


def test_tenant_extension_adds_labels_and_records_its_version() -> None:
    t = default_taxonomy().extend({"extends": "default", "version": "acme-1",
                                   "add": {"interests": {"dividend_stock": "高股息"},
                                           "violations": {"unlicensed_advice": "无资质荐股"}}},
                                  source="acme.yaml")
    assert t.version == "2026.12+acme-1"
    assert t.ids("interests")[-1] == "dividend_stock"
    assert "unlicensed_advice" in t.ids("violations")
    assert t.added == {"dividend_stock", "unlicensed_advice"}
    assert "dividend_stock" not in default_taxonomy().ids("interests")  # default untouched


@pytest.mark.parametrize(("doc", "message"), [
    ({"extends": "acme", "add": {}}, "acme.yaml: extends: expected 'default'"),
    ({"extends": "default", "add": {"moods": {"calm": "平静"}}},
     "acme.yaml: add: unknown family ['moods']"),
    ({"extends": "default", "add": {"intents": {"fund": "基金"}}},
     "acme.yaml: add.intents.fund: already exists in families.interests"),
    ({"extends": "default", "add": {"interests": {"Dividend": "高股息"}}},
     "acme.yaml: add.interests.Dividend: a label id is 2-40 characters"),
    ({"extends": "default", "add": {"interests": {"dividend": ""}}},
     "acme.yaml: add.interests.dividend: expected a description"),
    ({"extends": "default", "add": {"interests": {"dividend": {"description": "x",
                                                               "retired": True}}}},
     "acme.yaml: add.interests: a tenant cannot retire labels"),
    ({"extends": "default", "remove": ["fund"]}, "acme.yaml: unknown key(s) ['remove']"),
    (["extends", "default"], "acme.yaml: expected a mapping"),
])
def test_tenant_extension_errors_name_the_field(doc: object, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        default_taxonomy().extend(doc, source="acme.yaml")
    assert str(exc.value).startswith(message)


def test_document_errors() -> None:
    good = {"format": 1, "version": "1", "families": {
        f: {"side": "advisor" if f == "violations" else "customer", "labels": {f"{f}_x": "x"}}
        for f in ("interests", "intents", "emotions", "violations")}}
    assert Taxonomy.from_document(good, source="t.yaml").ids("intents") == ("intents_x",)
    bad_side = {**good, "families": {**good["families"],
                                     "intents": {"side": "advisor", "labels": {"a_b": "x"}}}}
    with pytest.raises(ConfigError, match=r"t.yaml: families.intents.side: expected 'customer'"):
        Taxonomy.from_document(bad_side, source="t.yaml")
    twice = {**good, "families": {**good["families"],
                                  "emotions": {"side": "customer", "labels": {"intents_x": "x"}}}}
    with pytest.raises(ConfigError, match=r"families.emotions.labels.intents_x: is also in families.intents"):
        Taxonomy.from_document(twice, source="t.yaml")
    with pytest.raises(ConfigError, match=r"version: expected a non-empty string"):
        Taxonomy.from_document({**good, "version": 2026}, source="t.yaml")
    with pytest.raises(ConfigError, match=r"not valid YAML"):
        Taxonomy.from_yaml("families: [", source="t.yaml")
