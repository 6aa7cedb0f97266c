"""Per-question metrics: fact recall, exact match, token precision/recall/F1, abstention, semantic similarity.

Fact recall
    The share of the question's key facts (the dataset provenance's gold values) that the answer states.
    Each fact is matched by its kind:
    - a URL: its normalised form is among the answer's URLs (scheme, www., trailing slash ignored);
    - an e-mail address: among the answer's addresses, case-insensitively;
    - a date: the same day, written ISO, dd/mm/yyyy or in French ("3 avril 2019", "1er avril 2019");
    - a number: stated as digits or in French words ("4" / "quatre");
    - text: its stemmed, fold()ed words appear contiguously in the answer, not negated (no "pas", "plus",
      "jamais", "ni", "non", "aucun", "sans" among the 3 words before it). A long fact (4+ content words,
      e.g. a long name) also counts when 75% of its content words appear in the answer (a paraphrase).
    A list (actors, sites, a listing's members) is scored by the recall of its members.

Token precision / recall / F1
    SQuAD-style, on fold()ed words with French articles, elided particles and a few function words removed
    (STOP_WORDS), against the expected answer. Exact match: the same word sequence after that normalisation.

Abstention
    The answer says it does not know or that the catalog does not say: "je ne sais pas", "n'est pas
    renseigné", "ne figure pas", "aucune application nommée", "je ne peux pas répondre", "aucune
    information"… (ABSTENTION_PATTERNS, on fold()ed text).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from dyag_core.evaluation.normalize import (
    TextView,
    as_date,
    as_int,
    find_all,
    is_email,
    is_url,
    normalize_url,
    stems,
    words,
)
from dyag_core.text import fold

NEGATIONS = frozenset({"pas", "plus", "jamais", "ni", "non", "aucun", "aucune", "sans"})
NEGATION_WINDOW = 3
# Articles, elided particles, prepositions and conjunctions (fold()ed: "à" is "a").
STOP_WORDS = frozenset(
    "le la les l un une des du de d au aux a et ou en dans sur pour par avec que qu qui ce cet cette ces se s "
    "son sa ses leur leurs est sont".split()
)
APPROX_MIN_WORDS = 4  # a fact of at least this many content words may match as a paraphrase…
APPROX_SHARE = 0.75  # …when this share of its content words is in the answer


# ---------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class FactMatch:
    fact: str
    found: bool
    how: str  # url, email, date, number, text, paraphrase, missing


def negated(text: TextView, start: int) -> bool:
    """A negation among the NEGATION_WINDOW words before `start`, in the same sentence. "plus" negates
    only after "ne" / "n'" ("n'est plus…", not "ADS-PLUS est…")."""
    sentence = text.sentence[start]
    window = [i for i in range(max(0, start - NEGATION_WINDOW), start) if text.sentence[i] == sentence]
    for i in window:
        word = text.words[i]
        if word in NEGATIONS and (
            word != "plus"
            or any(text.words[j] in ("ne", "n") for j in range(max(0, i - 3), i) if text.sentence[j] == sentence)
        ):
            return True
    return False


def match_fact(fact: str, answer: TextView) -> FactMatch:
    """Whether the answer states one key fact, and how it was recognised."""
    if is_url(fact):
        return FactMatch(fact, normalize_url(fact) in answer.url_set, "url")
    if is_email(fact):
        return FactMatch(fact, fact.strip().lower() in answer.emails, "email")
    date = as_date(fact)
    if date is not None:
        return FactMatch(fact, date in answer.dates, "date")
    number = as_int(fact)
    if number is not None:
        return FactMatch(fact, number in answer.number_values, "number")
    needle = stems(fact)
    if not needle:
        return FactMatch(fact, False, "missing")
    if any(not negated(answer, start) for start in find_all(answer.stems, needle)):
        return FactMatch(fact, True, "text")
    content = [s for s, w in zip(needle, words(fact), strict=True) if w not in STOP_WORDS]
    if len(content) >= APPROX_MIN_WORDS:
        present = set(answer.stems)
        if sum(s in present for s in content) >= APPROX_SHARE * len(content):
            return FactMatch(fact, True, "paraphrase")
    return FactMatch(fact, False, "missing")


def fact_recall(facts: Sequence[str], answer: TextView) -> tuple[float | None, tuple[FactMatch, ...]]:
    """(share of facts stated, each fact's match); None when there are no facts to check."""
    if not facts:
        return None, ()
    matches = tuple(match_fact(f, answer) for f in facts)
    return sum(m.found for m in matches) / len(matches), matches


# ---------------------------------------------------------------- tokens


@lru_cache(maxsize=8192)
def answer_tokens(text: str) -> tuple[str, ...]:
    """fold()ed words without STOP_WORDS (cached: expected answers are compared many times)."""
    return tuple(w for w in fold(text).split() if w not in STOP_WORDS)


def token_prf(prediction: str, reference: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of the prediction's tokens against the reference's, SQuAD-style."""
    pred, gold = answer_tokens(prediction), answer_tokens(reference)
    if not pred or not gold:
        same = float(not pred and not gold)
        return same, same, same
    common = sum((Counter(pred) & Counter(gold)).values())
    if not common:
        return 0.0, 0.0, 0.0
    precision, recall = common / len(pred), common / len(gold)
    return precision, recall, 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> bool:
    tokens = answer_tokens(prediction)
    return bool(tokens) and tokens == answer_tokens(reference)


# ---------------------------------------------------------------- abstention

ABSTENTION_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"\bje ne (sais|connais) pas\b",
        r"\bje n ai (pas|aucune?) (d |de |l |cette )?(information|donnee|connaissance|trace|element)",
        r"\bje ne dispose (pas|d aucune?)\b",
        r"\bje ne (peux|saurais|suis)( donc)? (pas|en mesure)\b",
        r"\bje ne peux (donc )?(vous )?(repondre|donner|dire|indiquer)\b",
        r"\b(aucune?|pas d) (information|donnee|element|renseignement)s?\b",
        r"\b(n est|ne sont|n etant|n a pas ete|pas) (pas )?(renseigne|"
        r"indique|precise|documente|reference|repertorie|connu)",
        r"\bnon (renseigne|communique|documente|connu)",
        r"\bne (renseigne|precise|mentionne|documente|indique) pas\b",
        r"\b(ne|n y) figure(nt)? pas\b",
        r"\baucune application (nommee|appelee|de ce nom|ne porte|ne correspond|n est)",
        r"\bn existe pas\b",
        r"\b(inconnue?s?|introuvables?)\b",
        r"\bpas (trouve|de trace)\b",
        r"\b(i (don t|do not) know|no information|not (in|found in) the catalog)\b",
    )
)


def abstains(text: str) -> bool:
    """The answer declines: says it does not know, or that the catalog does not hold the information."""
    folded = fold(text)
    return any(p.search(folded) for p in ABSTENTION_PATTERNS)


# ---------------------------------------------------------------- semantic similarity


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return 0.0 if not na or not nb else dot / (na * nb)
