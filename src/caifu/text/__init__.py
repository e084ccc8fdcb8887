"""Chat and news text: normalisation, seed dictionaries and tagging with evidence.

    from caifu.text import ChatTagger, seed_rules
    tagger = ChatTagger(seed_rules(securities, funds))   # build once
    tagger.tag("請問創業板怎麼開通")
    # [TextHit(tag='board.chinext', matched='創業板', start=2, end=5),
    #  TextHit(tag='intent.open_permission', matched='開通', start=7, end=9)]

``normalise`` (fold + OpenCC t2s, length-preserving), ``dictionaries`` (seed rules from the
vendored lexicons and the tenant's securities and funds), ``tagging`` (Aho-Corasick, longest
match, negation window). A logic-layer package: it imports ``caifu.core`` and ``caifu.data``
only.
"""

from caifu.text.dictionaries import dictionary_ids, seed_rules
from caifu.text.normalise import normalise, normalise_many
from caifu.text.tagging import ChatTagger, TextHit, TextRule

__all__ = [
    "ChatTagger",
    "TextHit",
    "TextRule",
    "dictionary_ids",
    "normalise",
    "normalise_many",
    "seed_rules",
]
