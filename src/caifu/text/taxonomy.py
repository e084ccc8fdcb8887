"""The chat taxonomy: stable label ids per family, the side that speaks them, tenant extensions.

The packaged taxonomy is ``caifu/data/text/taxonomy.yaml`` (its header explains the document);
``default_taxonomy()`` loads it once. A tenant extends it with a YAML document of its own::

    extends: default
    version: "acme-1"            # optional; recorded beside the default's version
    add:
      interests:
        dividend_stock: 高股息、红利
      violations:
        unlicensed_advice: 无资质荐股

A tenant adds labels to existing families only; it never renames, removes or moves a label
(ids are stable: corpus labels, stored tags and the model's columns all use them). Every
problem raises ``ConfigError`` naming the source and the field (``add.interests.Fund: …``).

Families are fixed, because the tagger's output has one field per family: ``interests``,
``intents``, ``emotions`` (customer side) and ``violations`` (advisor side). An empty family
means "none".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any, Literal

import yaml

from caifu.core.errors import ConfigError

__all__ = ["FAMILIES", "SIDES", "Family", "Taxonomy", "default_taxonomy"]

Side = Literal["customer", "advisor"]
FAMILIES = ("interests", "intents", "emotions", "violations")
SIDES: tuple[Side, ...] = ("customer", "advisor")
_SIDE_OF = {"interests": "customer", "intents": "customer", "emotions": "customer",
            "violations": "advisor"}
_LABEL_ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_DOC_KEYS = {"format", "version", "families"}
_EXT_KEYS = {"extends", "version", "add"}


@dataclass(frozen=True)
class Family:
    """One label family: its side and its labels (id → description), in document order."""

    name: str
    side: Side
    labels: dict[str, str]
    retired: frozenset[str] = frozenset()

    @property
    def ids(self) -> tuple[str, ...]:
        """Active label ids (retired ones left out), in document order."""
        return tuple(i for i in self.labels if i not in self.retired)


@dataclass(frozen=True)
class Taxonomy:
    """A validated taxonomy; ``version`` is the default's, ``+ tenant`` when extended."""

    version: str
    families: dict[str, Family]
    source: str
    added: frozenset[str] = frozenset()  # label ids a tenant extension added

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_document(cls, doc: Any, *, source: str) -> Taxonomy:
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{source}: expected a mapping with format, version, families")
        _unknown_keys(doc, _DOC_KEYS, source, "")
        if doc.get("format") != 1:
            raise ConfigError(f"{source}: format: expected 1, got {doc.get('format')!r}")
        version = doc.get("version")
        if not isinstance(version, str) or not version.strip():
            raise ConfigError(f"{source}: version: expected a non-empty string (quote it)")
        fams = doc.get("families")
        if not isinstance(fams, Mapping):
            raise ConfigError(f"{source}: families: expected a mapping of family → labels")
        missing = [f for f in FAMILIES if f not in fams]
        extra = [f for f in fams if f not in FAMILIES]
        if missing or extra:
            raise ConfigError(f"{source}: families: expected exactly {list(FAMILIES)}; "
                              f"missing {missing}, unknown {extra}")
        families: dict[str, Family] = {}
        seen: dict[str, str] = {}
        for name in FAMILIES:
            body = fams[name]
            where = f"families.{name}"
            if not isinstance(body, Mapping):
                raise ConfigError(f"{source}: {where}: expected a mapping with side and labels")
            _unknown_keys(body, {"side", "labels"}, source, where)
            if body.get("side") != _SIDE_OF[name]:
                raise ConfigError(f"{source}: {where}.side: expected {_SIDE_OF[name]!r}, "
                                  f"got {body.get('side')!r}")
            labels, retired = _labels(body.get("labels"), source, f"{where}.labels", seen, name)
            families[name] = Family(name, _SIDE_OF[name], labels, frozenset(retired))  # type: ignore[arg-type]
        return cls(version.strip(), families, source)

    @classmethod
    def from_yaml(cls, text: str, *, source: str) -> Taxonomy:
        return cls.from_document(_yaml(text, source), source=source)

    def extend(self, doc: Any, *, source: str) -> Taxonomy:
        """This taxonomy plus a tenant's ``extends: default`` / ``add:`` document."""
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{source}: expected a mapping with extends: default and add:")
        _unknown_keys(doc, _EXT_KEYS, source, "")
        if doc.get("extends") != "default":
            raise ConfigError(f"{source}: extends: expected 'default', got "
                              f"{doc.get('extends')!r} (a tenant extends the packaged taxonomy)")
        add = doc.get("add") or {}
        if not isinstance(add, Mapping):
            raise ConfigError(f"{source}: add: expected a mapping of family → labels")
        unknown = [f for f in add if f not in FAMILIES]
        if unknown:
            raise ConfigError(f"{source}: add: unknown famil{'ies' if len(unknown) > 1 else 'y'} "
                              f"{unknown}; a tenant adds labels to {list(FAMILIES)}")
        seen = {i: f.name for f in self.families.values() for i in f.labels}
        families = dict(self.families)
        added: set[str] = set(self.added)
        for name, body in add.items():
            where = f"add.{name}"
            labels, retired = _labels(body, source, where, seen, name, tenant=True)
            if retired:
                raise ConfigError(f"{source}: {where}: a tenant cannot retire labels")
            old = families[name]
            families[name] = Family(name, old.side, {**old.labels, **labels}, old.retired)
            added.update(labels)
        version = doc.get("version")
        if version is not None and (not isinstance(version, str) or not version.strip()):
            raise ConfigError(f"{source}: version: expected a non-empty string (quote it)")
        tag = version.strip() if isinstance(version, str) else "tenant"
        return Taxonomy(f"{self.version}+{tag}", families, source, frozenset(added))

    # --- queries -----------------------------------------------------------------------------

    def ids(self, family: str) -> tuple[str, ...]:
        return self.families[family].ids

    def family_of(self, label: str) -> str | None:
        for fam in self.families.values():
            if label in fam.labels:
                return fam.name
        return None

    def families_of(self, side: Side) -> tuple[str, ...]:
        return tuple(f.name for f in self.families.values() if f.side == side)


def _yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from None


def _unknown_keys(doc: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    extra = sorted(str(k) for k in doc if k not in allowed)
    if extra:
        at = f"{where}: " if where else ""
        raise ConfigError(f"{source}: {at}unknown key(s) {extra}; expected {sorted(allowed)}")


def _labels(body: Any, source: str, where: str, seen: dict[str, str], family: str,
            tenant: bool = False) -> tuple[dict[str, str], list[str]]:
    """``(labels, retired ids)``; a label is ``id: description`` or ``id: {description,
    retired}``; ids are unique across families (``seen`` maps id → family, updated)."""
    if not isinstance(body, Mapping) or not body:
        raise ConfigError(f"{source}: {where}: expected a non-empty mapping of label id → "
                          "description")
    labels: dict[str, str] = {}
    retired: list[str] = []
    for label, value in body.items():
        at = f"{source}: {where}.{label}"
        if not isinstance(label, str) or not _LABEL_ID.match(label):
            raise ConfigError(f"{at}: a label id is 2-40 characters of a-z, 0-9 and _, "
                              "starting with a letter")
        if label in seen:
            verb = "already exists" if tenant else "is also"
            raise ConfigError(f"{at}: {verb} in families.{seen[label]} (ids are unique and "
                              "never reused)")
        if isinstance(value, Mapping):
            _unknown_keys(value, {"description", "retired"}, source, f"{where}.{label}")
            if value.get("retired", False) not in (True, False):
                raise ConfigError(f"{at}.retired: expected true or false")
            if value.get("retired"):
                retired.append(label)
            value = value.get("description")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{at}: expected a description (what the label covers)")
        labels[label] = value.strip()
        seen[label] = family
    return labels, retired


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    """The packaged taxonomy, validated once."""
    text = files("caifu.data").joinpath("text", "taxonomy.yaml").read_text(encoding="utf-8")
    return Taxonomy.from_yaml(text, source="caifu/data/text/taxonomy.yaml")
