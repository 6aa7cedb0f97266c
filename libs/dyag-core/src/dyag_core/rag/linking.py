"""Entity linking: which of the catalog's entities a question names.

Every name comes from the catalog itself, never from a list written here: each entity's name,
long name, the aliases its record gives (fields such as "sigle", "alias", "acronyme", "autre nom"),
the distinctive parts of a compound name ("LHI" for LHI-SUIVI, when no other entity's name has it)
and acronyms defined in its text ("… inventaire du patrimoine naturel (SINP)").

Matching is accent- and case-insensitive (dyag_core.text.fold), tolerant of spacing and hyphens
("N2000 SUIVI", "n2000-suivi"), of typos (an edit distance of 1, or 2 for long names) and of long
names given with a word missing or changed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dyag_core.catalog.model import Entity
from dyag_core.rag.tokens import STOPWORDS, stem, words
from dyag_core.text import fold, normalize_key

_ALIAS_KEY = re.compile(
    r"\b(alias|aliases|sigle|sigles|acronyme|acronymes|synonyme|synonymes|"
    r"autre nom|autres noms|ancien nom|anciens noms|nom court|appellation)\b"
)
_ALIAS_SPLIT = re.compile(r"\s*[,;|]\s*")
_PAREN_ACRONYM = re.compile(r"\(([A-Z][A-Z0-9]{1,9})\)")
_NAME_LIKE = re.compile(r"(?<![\w-])([A-Z0-9][A-Z0-9-]*[A-Z][A-Z0-9-]*(?:\s+[A-Z0-9][A-Z0-9-]+)*)(?![\w-])")
_AFTER_APPLICATION = re.compile(r"\bapplications?\s+([A-Z][\w-]+(?:\s+[A-Z0-9][\w-]+)*)")
_SEPARATOR = " | "
MIN_PART_CHARS = 3  # a part of a compound name shorter than this ("RH", "PV") is not an alias


@dataclass(frozen=True, slots=True)
class EntityNames:
    """The names an entity goes by, as they travel in chunk metadata."""

    entity_id: str
    name: str
    long_name: str = ""
    aliases: tuple[str, ...] = ()  # given by the record
    acronyms: tuple[str, ...] = ()  # defined in the record's text

    def to_metadata(self) -> dict[str, str]:
        return {"aliases": _SEPARATOR.join(self.aliases), "acronyms": _SEPARATOR.join(self.acronyms)}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, object]) -> EntityNames:
        def split(key: str) -> tuple[str, ...]:
            value = str(metadata.get(key) or "")
            return tuple(v for v in value.split(_SEPARATOR) if v)

        return cls(
            entity_id=str(metadata["entity_id"]),
            name=str(metadata.get("entity_name") or ""),
            long_name=str(metadata.get("long_name") or ""),
            aliases=split("aliases"),
            acronyms=split("acronyms"),
        )


def names_of(entity: Entity) -> EntityNames:
    aliases: list[str] = []
    for key, value in entity.extra.items():
        if _ALIAS_KEY.search(normalize_key(key)):
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, (str, int, float)):
                    aliases += [a for a in _ALIAS_SPLIT.split(str(item).strip()) if a]
    acronyms = [a for text in (entity.long_name, entity.description) if text for a in _defined_acronyms(text)]
    taken = {fold(entity.name), fold(entity.long_name or "")}
    aliases = [a for a in dict.fromkeys(aliases) if fold(a) not in taken]
    acronyms = [a for a in dict.fromkeys(acronyms) if fold(a) not in taken | {fold(x) for x in aliases}]
    return EntityNames(entity.id, entity.name, entity.long_name or "", tuple(aliases), tuple(acronyms))


def _defined_acronyms(text: str) -> list[str]:
    """'… patrimoine naturel (SINP)' -> SINP, when its letters are initials of the words just before it."""
    found = []
    for match in _PAREN_ACRONYM.finditer(text):
        acronym = match.group(1)
        letters = [c for c in acronym.lower() if c.isalpha()]
        before = [w for w in words(text[: match.start()]) if w not in STOPWORDS][-(len(letters) + 3) :]
        initials = [w[0] for w in before]
        if len(letters) >= 2 and all(initials.count(c) >= letters.count(c) for c in set(letters)):
            found.append(acronym)
    return found


@dataclass(frozen=True, slots=True)
class LinkedEntity:
    entity_id: str
    name: str
    matched: str  # the words of the question that named it
    kind: str  # name | long_name | alias | acronym | fuzzy_name | partial_long_name
    score: float  # 1.0 for an exact name; lower for fuzzy and partial matches


@dataclass(frozen=True, slots=True)
class _Alias:
    entity_id: str
    words: tuple[str, ...]
    kind: str
    weight: float


class EntityLinker:
    """Built once per catalog version (or collection), then fast for each question."""

    def __init__(self, entities: Iterable[EntityNames], ordinary_words: Iterable[str] = ()):
        """`ordinary_words`: folded words the catalog's text writes in lower case ("sites", "pollués"):
        a part of a compound name that is one of them (SITES-POLLUES) is not taken for an acronym."""
        ordinary = set(ordinary_words)
        self.names: dict[str, EntityNames] = {}
        for names in entities:
            self.names.setdefault(names.entity_id, names)
        aliases: list[_Alias] = []
        part_owners: defaultdict[str, set[str]] = defaultdict(set)
        for n in self.names.values():
            aliases.append(_Alias(n.entity_id, tuple(words(n.name)), "name", 1.0))
            if n.long_name:
                aliases.append(_Alias(n.entity_id, tuple(words(n.long_name)), "long_name", 1.0))
            aliases += [_Alias(n.entity_id, tuple(words(a)), "alias", 1.0) for a in n.aliases]
            aliases += [_Alias(n.entity_id, tuple(words(a)), "acronym", 0.9) for a in n.acronyms]
            name_words = words(n.name)
            if len(name_words) > 1:
                for part in name_words:
                    if (
                        len(part) >= MIN_PART_CHARS
                        and part not in STOPWORDS
                        and part not in ordinary
                        and not part.isdigit()
                    ):
                        part_owners[part].add(n.entity_id)
        # A part of a compound name is an alias only when it is distinctive: one entity's, and nobody's whole name.
        whole = {"".join(a.words) for a in aliases if a.kind == "name"}
        for part, owners in part_owners.items():
            if len(owners) == 1 and part not in whole:
                aliases.append(_Alias(next(iter(owners)), (part,), "acronym", 0.9))
        self._by_compact: defaultdict[str, list[_Alias]] = defaultdict(list)
        self._long: list[tuple[_Alias, frozenset[str]]] = []
        for alias in aliases:
            if not alias.words:
                continue
            self._by_compact["".join(alias.words)].append(alias)
            if alias.kind == "long_name":
                content = frozenset(stem(w) for w in alias.words if w not in STOPWORDS)
                if len(content) >= 3:
                    self._long.append((alias, content))
        self._long_by_stem: defaultdict[str, list[int]] = defaultdict(list)
        for position, (_, content) in enumerate(self._long):
            for word in content:
                self._long_by_stem[word].append(position)
        # Every prefix of a compact form: growing a window of the question stops as soon as it names nothing.
        self._prefixes = {key[:i] for key in self._by_compact for i in range(1, len(key) + 1)}
        # Fuzzy candidates: single-word compact forms of names, aliases and acronyms, by character trigram.
        self._fuzzy_keys = [
            k for k, v in self._by_compact.items() if len(k) >= 5 and any(a.kind != "long_name" for a in v)
        ]
        self._by_trigram: defaultdict[str, list[int]] = defaultdict(list)
        self._gram_counts: list[int] = []
        for position, key in enumerate(self._fuzzy_keys):
            grams = _trigrams(key)
            self._gram_counts.append(len(grams))
            for gram in grams:
                self._by_trigram[gram].append(position)

    @classmethod
    def from_entities(cls, entities: Iterable[Entity]) -> EntityLinker:
        entities = list(entities)
        texts = [t for e in entities for t in (e.long_name, e.description, e.functions) if t]
        return cls((names_of(e) for e in entities), vocabularies(texts)[1])

    @classmethod
    def from_metadatas(
        cls, metadatas: Iterable[Mapping[str, object]], ordinary_words: Iterable[str] = ()
    ) -> EntityLinker:
        return cls((EntityNames.from_metadata(m) for m in metadatas if m and m.get("entity_id")), ordinary_words)

    def __len__(self) -> int:
        return len(self.names)

    # ------------------------------------------------------------------ linking
    def link(self, question: str, vocabulary: frozenset[str] | set[str] = frozenset()) -> list[LinkedEntity]:
        """The entities the question names, best first. `vocabulary` (the folded words of the indexed
        text) keeps real words from being read as typos of a name."""
        qwords = words(question)
        found: list[tuple[float, int, int, int, _Alias, str]] = []  # score, -length, start, end, alias, kind

        # Exact names, long names, aliases and acronyms, with or without their separators.
        for start in range(len(qwords)):
            compact = ""
            for end in range(start, len(qwords)):
                compact += qwords[end]
                if compact not in self._prefixes:
                    break
                for alias in self._by_compact.get(compact, ()):
                    found.append((alias.weight, -(end - start + 1), start, end + 1, alias, alias.kind))

        # Typos: a word (or two written apart) within a small edit distance of a name.
        for start in range(len(qwords)):
            for span in (1, 2):
                end = start + span
                if end > len(qwords):
                    break
                piece = "".join(qwords[start:end])
                if len(piece) < 4 or piece in self._by_compact or qwords[start] in STOPWORDS:
                    continue
                if all(w in vocabulary for w in qwords[start:end]):
                    continue  # words the catalog itself uses are not typos
                for key, distance in self._fuzzy(piece):
                    for alias in self._by_compact[key]:
                        score = alias.weight * (0.85 if distance == 1 else 0.75)
                        found.append((score, -span, start, end, alias, "fuzzy_" + alias.kind))

        # Long names given with a word missing, added or misspelt.
        stems = [stem(w) for w in qwords]
        shared: defaultdict[int, int] = defaultdict(int)
        for word in set(stems):
            for position in self._long_by_stem.get(word, ()):
                shared[position] += 1
        for position, count in shared.items():
            alias, content = self._long[position]
            if count < 0.75 * len(content):
                continue
            positions = [i for i, s in enumerate(stems) if s in content]
            present = content & set(stems)
            ratio = len(present) / len(content)
            if ratio >= 0.75 and positions:
                found.append((0.7 * ratio, -len(present), positions[0], positions[-1] + 1, alias, "partial_long_name"))

        # Best matches first; a span of the question names one thing (several entities only on a tie).
        found.sort(key=lambda f: (-f[0], f[1], f[2]))
        taken: list[tuple[int, int, float]] = []
        result: dict[str, LinkedEntity] = {}
        for score, _, start, end, alias, kind in found:
            clash = [t for t in taken if start < t[1] and t[0] < end]
            if clash and not all(t[:2] == (start, end) and t[2] == score for t in clash):
                continue
            if not clash:
                taken.append((start, end, score))
            if alias.entity_id not in result:
                result[alias.entity_id] = LinkedEntity(
                    alias.entity_id,
                    self.names[alias.entity_id].name,
                    " ".join(qwords[start:end]),
                    kind,
                    round(score, 3),
                )
        return sorted(result.values(), key=lambda m: -m.score)

    def unknown_mentions(
        self, question: str, linked: list[LinkedEntity], vocabulary: frozenset[str] | set[str]
    ) -> list[str]:
        """Names the question gives that are neither an entity of the catalog nor a word of its text:
        'TIVAPORT NG' in "Quel est le statut de TIVAPORT NG ?"."""
        covered = {w for m in linked for w in m.matched.split()}
        candidates = [m.group(1) for m in _NAME_LIKE.finditer(question)] + [
            m.group(1) for m in _AFTER_APPLICATION.finditer(question)
        ]
        unknown: list[str] = []
        for candidate in dict.fromkeys(c.strip(" -") for c in candidates):
            cw = [w for w in words(candidate) if w not in STOPWORDS]
            if not cw or len("".join(cw)) < 3 or any(w in covered for w in cw):
                continue
            if any(w in vocabulary or stem(w) in vocabulary for w in cw if len(w) >= 3):
                continue  # a word the catalog uses (an actor, a domain…): not an unknown application
            unknown.append(candidate)
        return unknown

    # ------------------------------------------------------------------ helpers
    def _fuzzy(self, piece: str) -> list[tuple[str, int]]:
        counts: defaultdict[int, int] = defaultdict(int)
        grams = _trigrams(piece)
        for gram in grams:
            for position in self._by_trigram.get(gram, ()):
                counts[position] += 1
        hits = []
        for position, shared in counts.items():
            key = self._fuzzy_keys[position]
            limit = 1 if min(len(key), len(piece)) < 9 else 2
            # One edit changes at most 4 trigrams (a swap of two letters): sharing fewer rules the key out.
            if abs(len(key) - len(piece)) > limit or shared < max(len(grams), self._gram_counts[position]) - 4 * limit:
                continue
            distance = _osa_distance(piece, key, limit)
            if 0 < distance <= limit:
                hits.append((key, distance))
        return hits


_WORD = re.compile(r"[^\W_]+")
_URL_OR_EMAIL = re.compile(r"\S+://\S+|\S+@\S+|www\.\S+")


def vocabularies(texts: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The folded words of the texts (stemmed forms too), and those written in lower case somewhere."""
    every: set[str] = set()
    ordinary: set[str] = set()
    for text in texts:
        every.update(fold(w) for w in _WORD.findall(text))
        for word in _WORD.findall(_URL_OR_EMAIL.sub(" ", text)):  # addresses are written in lower case
            if word.islower():
                ordinary.add(fold(word))
    ordinary |= {stem(w) for w in ordinary}
    every |= {stem(w) for w in every}
    return frozenset(every), frozenset(ordinary)


def _trigrams(text: str) -> set[str]:
    padded = f"^{text}$"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent swaps), stopping above `limit`."""
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]
