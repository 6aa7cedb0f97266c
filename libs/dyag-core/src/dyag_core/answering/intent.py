"""Which field(s) a question asks about: a classifier learned from the registry's phrasings.

A multinomial naive Bayes over the question's folded words, word pairs and character 4-grams (typos and
missing accents still share most of their 4-grams), trained on every phrasing of every intent with the
application's mention masked (and on the user's own dataset when one is given). Its scores are turned into
probabilities by a temperature fitted by leave-one-out on the training phrasings themselves, so that a
confidence of 0.8 means roughly "right 8 times in 10" on phrasings it has not seen.

The question's own mention of the application (or of a listing criterion) is masked before classifying:
the intent is read from the words around the name, never from the name.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from dyag_core.rag.tokens import stem
from dyag_core.text import fold

ENTITY_MASK = "qqx"  # stands for the application's mention, in training and at inference
CRITERION_MASK = "qqc"  # stands for a listing criterion ("en production", "du domaine « Eau »")
_WORD = re.compile(r"[0-9a-z]+")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
ALPHA = 0.1  # additive smoothing
INVERSE_TEMPERATURES = tuple(round(0.02 * 1.25**i, 4) for i in range(30))  # the grid the temperature is fitted on


# Chat shorthand, read as the word it stands for (training and questions alike).
SHORTHAND = {
    "appli": "application",
    "applis": "applications",
    "app": "application",
    "apps": "applications",
    "techno": "technologie",
    "technos": "technologies",
    "doc": "documentation",
    "info": "information",
    "infos": "informations",
    "dev": "developpement",
    "mail": "courriel",
    "mails": "courriels",
    "resp": "responsable",
    "dt": "date",
    "url": "adresse",
    "urls": "adresses",
    "id": "identifiant",
    "num": "numero",
    "k": "que",
    "koi": "quoi",
}


def tokens_of(text: str) -> list[str]:
    """Folded words, shorthand expanded; "l'application X" read as X (the words that name it say nothing of the
    field)."""
    tokens = [SHORTHAND.get(token, token) for token in _WORD.findall(fold(text))]
    out: list[str] = []
    for i, token in enumerate(tokens):
        if token in ("application", "appli", "outil") and i + 1 < len(tokens) and tokens[i + 1] == ENTITY_MASK:
            if out and out[-1] == "l":
                out.pop()
            continue
        out.append(token)
    return out


def features(text: str) -> Counter[str]:
    """Words, word pairs and the character 4-grams of each word (the masks count as words only)."""
    tokens = tokens_of(text)
    found: Counter[str] = Counter()
    for i, token in enumerate(tokens):
        found["w:" + token] += 1
        found["s:" + stem(token)] += 1
        if i:
            found[f"b:{tokens[i - 1]}_{token}"] += 1
        if token in (ENTITY_MASK, CRITERION_MASK):
            continue
        padded = f"<{token}>"
        for j in range(max(1, len(padded) - 3)):
            found["c:" + padded[j : j + 4]] += 1
    if tokens:
        found["first:" + tokens[0]] += 1
    return found


def fill_phrasing(phrasing: str) -> str:
    """A registry phrasing with its placeholders replaced by the masks the classifier sees at inference."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in ("adj", "verb"):
            return CRITERION_MASK
        if key.startswith("de_"):
            return "de " + ENTITY_MASK
        if key.startswith("que_"):
            return "que " + ENTITY_MASK
        return ENTITY_MASK

    return _PLACEHOLDER.sub(replace, phrasing)


@dataclass(frozen=True, slots=True)
class Scored:
    intent: str
    probability: float


class IntentClassifier:
    """fit() on (text, intent) pairs, then predict(text) -> intents by calibrated probability."""

    def __init__(self, examples: Iterable[tuple[str, str]]):
        samples = [(features(text), intent) for text, intent in examples]
        if not samples:
            raise ValueError("an intent classifier needs examples")
        self.intents = tuple(sorted({intent for _, intent in samples}))
        self._counts: dict[str, Counter[str]] = defaultdict(Counter)
        for feats, intent in samples:
            self._counts[intent].update(feats)
        self._vocabulary = {f for counts in self._counts.values() for f in counts}
        self.words = frozenset(f[2:] for f in self._vocabulary if f.startswith("w:"))  # the words it has learned
        self._totals = {i: sum(self._counts[i].values()) for i in self.intents}
        self.inverse_temperature = self._fit_temperature(samples)

    def _log_scores(self, feats: Counter[str], minus: tuple[str, Counter[str]] | None = None) -> dict[str, float]:
        size = len(self._vocabulary)
        scores = {}
        for intent in self.intents:
            counts = self._counts[intent]
            total = self._totals[intent]
            removed = minus[1] if minus and minus[0] == intent else None
            if removed is not None:
                total -= sum(removed.values())
            denominator = math.log(total + ALPHA * size)
            score = 0.0
            for feature, n in feats.items():
                if feature not in self._vocabulary:
                    continue
                count = counts.get(feature, 0) - (removed.get(feature, 0) if removed is not None else 0)
                score += n * (math.log(count + ALPHA) - denominator)
            scores[intent] = score
        return scores

    def _fit_temperature(self, samples: list[tuple[Counter[str], str]]) -> float:
        """The inverse temperature that minimises the leave-one-out negative log-likelihood."""
        held_out = [(self._log_scores(feats, (intent, feats)), intent) for feats, intent in samples]
        best, best_loss = 1.0, math.inf
        for temperature in INVERSE_TEMPERATURES:
            loss = 0.0
            for scores, intent in held_out:
                loss -= math.log(max(_softmax(scores, temperature).get(intent, 0.0), 1e-12))
            if loss < best_loss:
                best, best_loss = temperature, loss
        return best

    def predict(self, text: str) -> list[Scored]:
        """Every intent with its probability, best first."""
        probabilities = _softmax(self._log_scores(features(text)), self.inverse_temperature)
        return sorted((Scored(i, p) for i, p in probabilities.items()), key=lambda s: -s.probability)


def _softmax(scores: dict[str, float], inverse_temperature: float) -> dict[str, float]:
    top = max(scores.values())
    weights = {i: math.exp((s - top) * inverse_temperature) for i, s in scores.items()}
    total = sum(weights.values())
    return {i: w / total for i, w in weights.items()}
