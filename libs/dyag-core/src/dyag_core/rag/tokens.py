"""Words for lexical search (BM25) and entity linking: folded, French stop words out, plurals merged."""

from __future__ import annotations

import re

from dyag_core.text import fold

# Folded (no accents, lower case). Question words are kept out too: they say nothing about the record.
STOPWORDS = frozenset(
    """
    a au aux avec ce ces cet cette d dans de des du elle elles en est et etre eu il ils je l la le les leur leurs
    lui m ma mais me meme mes moi mon n ne nos notre nous on ou par pas pour qu que qui s sa se ses si son sont
    sur t ta te tes toi ton tu un une vos votre vous y c j ca cela ceci celle celui ont sont etait ete fait faire
    peux peut puis pouvez donner donne dis dire moi quel quelle quels quelles quoi comment combien ou pourquoi
    quand lequel laquelle lesquels lesquelles dont est-ce ce-que qu'est tout tous toute toutes plus moins tres
    bien aussi alors donc ni car sous chez vers entre depuis selon afin ainsi deja encore
    """.split()
)
_SPLIT = re.compile(r"[^0-9a-z]+")


def stem(word: str) -> str:
    """Plural and feminine marks merged, lightly: 'applications' -> 'application', 'reseaux' -> 'reseau'."""
    if len(word) > 4 and word.endswith("aux"):
        return word[:-1]
    if len(word) > 3 and word[-1] in "sx" and not word[-2].isdigit():
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Folded, stemmed words without stop words: the terms BM25 indexes and queries."""
    return [stem(w) for w in _SPLIT.split(fold(text)) if w and w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def words(text: str) -> list[str]:
    """Folded words, stop words included (entity linking needs positions)."""
    return [w for w in _SPLIT.split(fold(text)) if w]
