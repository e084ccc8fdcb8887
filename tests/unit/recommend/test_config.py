"""The tenant's recommendation YAML: defaults, section overrides, errors naming the field."""

from __future__ import annotations

import pytest

from caifu.core.errors import ConfigError
from caifu.recommend import config


def test_the_packaged_default_parses() -> None:
    c = config.default()
    assert c.version and c.fund_types["money"].variety == "cash"
    assert c.actions["open_chinext"].risk_level == "R4"
    assert "chinext_not_open" in c.actions["open_chinext"].requires


def test_a_tenant_section_replaces_the_defaults_and_keeps_the_rest() -> None:
    c = config.parse({"version": "acme-3", "rules": [{"filter": {"item_type": "fund"}}]},
                     "recommend/acme.yaml")
    assert c.version == "acme-3"
    assert len(c.rules) == 1 and c.rules[0].filter is not None
    assert c.fund_types == config.default().fund_types  # not restated, kept


@pytest.mark.parametrize(("document", "field"), [
    ({"caps": {"per_customer_per_7_days": -1}}, "caps.per_customer_per_7_days"),
    ({"fund_types": {"money": {"horizon": "forever", "variety": "cash"}}},
     "fund_types.money.horizon"),
    ({"actions": {"x": {"title": "t", "risk_level": "R2", "requires": ["rich"]}}},
     "actions.x"),
    ({"rules": [{"filter": {"item_type": "fund"}, "limit": {"item_type": "fund", "max": 1}}]},
     "rules.0"),
    ({"rules": [{"boost": {"where": {"kind": "bond"}, "factor": 0}}]}, "rules.0.boost.factor"),
])
def test_mistakes_name_the_file_and_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config.parse(document, "recommend/acme.yaml")
    assert "recommend/acme.yaml" in str(exc.value) and field in str(exc.value)


def test_a_title_the_lexicon_flags_is_never_offered() -> None:
    import numpy as np

    from caifu.services.recommend.inputs import compliance_ok
    from caifu.text.compliance import Lexicon

    titles = np.array(["稳赚不赔的基金，跟着买就行", "沪深300指数基金介绍", "我们不承诺保本，请注意风险"],
                      dtype=object)
    assert compliance_ok(titles, Lexicon.load()).tolist() == [False, True, True]
