"""Generation: a catalog's facts become grounded French question/answer examples.

A *subject* is one fact to ask about (an entity's status, a pair to compare, a listing criterion,
a made-up name). Each subject has at least five phrasings, shuffled by a seed derived from the
subject itself, so an unchanged entity gets the same questions whatever else changes. Each type
yields its examples round-robin (first phrasing of every subject, then the second…), and the
quotas are spread evenly across types, so any num_questions is balanced across types and entities.
Same catalog + same config -> byte-identical output: only random.Random instances and hashlib.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from difflib import SequenceMatcher
from itertools import chain, zip_longest
from typing import Any

from dyag_core.catalog.diff import CatalogDiff
from dyag_core.catalog.model import Catalog, Entity
from dyag_core.catalog.profile import role_filled
from dyag_core.dataset.errors import DatasetError
from dyag_core.dataset.french import entity_mentions, mention_fields
from dyag_core.dataset.model import DEFAULT_SYSTEM_PROMPT, NEGATIVE_TYPES, QUESTION_TYPES, Example, Provenance
from dyag_core.dataset.phrasings import (
    EMPTY_FIELD_PHRASINGS,
    EMPTY_FIELD_SOURCES,
    PHRASINGS,
    RELATED_APPLICATIONS,
    RELATED_DATA,
    STATUS_YES_NO,
    UNKNOWN_ENTITY_PHRASINGS,
)
from dyag_core.dataset.registry import INTENTS, dataset_roles, intents_of_type
from dyag_core.dataset.split import fact_key
from dyag_core.dataset.templates import (
    Answer,
    Criterion,
    answer_comparative,
    answer_counting,
    answer_empty_field,
    answer_listing,
    answer_related,
    answer_status,
    answer_unknown_entity,
    comparable,
    listed_members,
    unknown_name_in,
)
from dyag_core.text import fold

POSITIVE_TYPES = tuple(t for t in QUESTION_TYPES if t not in NEGATIVE_TYPES)
# The per-application types, each taught by the registry's intents of that type (dyag_core.dataset.registry).
MOST_VARIATIONS = max(len(table) for table in PHRASINGS.values())  # no type has more phrasings than this
ENTITY_TYPES = tuple(dict.fromkeys(i.dataset_type for i in INTENTS.values() if i.scope == "entity" and i.dataset_type))
CATALOG_WIDE_TYPES = ("comparative", "listing", "counting")
# The roles each positive type reads: it applies to an entity when one of them is filled.
TYPE_ROLES: dict[str, tuple[str, ...]] = {qtype: dataset_roles(qtype) for qtype in (*ENTITY_TYPES, *CATALOG_WIDE_TYPES)}
MIN_ACTOR_APPLICATIONS = 2  # an actor becomes a listing criterion when it works on at least this many
SIMILARITY_LIMIT = 0.6  # a made-up name must stay below this similarity ratio with every real name
Progress = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    num_questions: int | None = None  # None: everything the plan allows
    question_types: str | Sequence[str] = "all"  # "all", a list, or "status,domain"
    variations: int = 3  # phrasings per entity and type
    add_negatives: bool = True
    seed: int = 42
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    negative_ratio: float = 0.1  # share of negatives in the dataset
    # None: every entity. Else a seeded sample of this many: a large catalog's dataset of a given size keeps two
    # phrasings per fact (the paraphrase split tests facts under a phrasing that training did not see).
    max_entities: int | None = None

    def selected_types(self) -> tuple[str, ...]:
        """The question types to generate, in QUESTION_TYPES order (negatives only with add_negatives)."""
        wanted = _parse_types(self.question_types)
        return tuple(t for t in QUESTION_TYPES if t in wanted and (self.add_negatives or t not in NEGATIVE_TYPES))


@dataclass(frozen=True, slots=True)
class DatasetPlan:
    """The guide's step 1.3 arithmetic, plus what this catalog really allows per type."""

    entities: int
    question_types: tuple[str, ...]
    variations: int
    possible: dict[str, int]  # per type: examples the catalog allows (a type needs its field filled)
    planned: dict[str, int]  # per type: what generate() yields with num_questions=None

    @property
    def guide_estimate(self) -> int:
        """Nb applications × Nb types × variations: the guide's upper bound."""
        return self.entities * len(self.question_types) * self.variations

    @property
    def total(self) -> int:
        """The most examples this catalog and config give (the largest valid num_questions)."""
        return sum(self.planned.values())

    @property
    def per_type(self) -> dict[str, int]:
        """What each type contributes at most (the negatives capped by negative_ratio); sums to total."""
        return dict(self.planned)

    @property
    def formula(self) -> str:
        return (
            f"{self.entities} apps x {len(self.question_types)} types "
            f"x {self.variations} variations = {self.guide_estimate}"
        )

    def describe(self) -> str:
        lines = [f"{self.formula} examples at most; this catalog allows {self.total}:"]
        lines += [f"  {t}: {self.planned[t]} (possible: {self.possible[t]})" for t in self.question_types]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "guide_estimate": self.guide_estimate,
            "total": self.total,
            "per_type": self.per_type,
            "formula": self.formula,
        }


@dataclass(frozen=True, slots=True)
class _Subject:
    """One fact to ask about, with its phrasings in its own seeded order."""

    qtype: str
    key: str  # identity inside its type: entity id, pair, criterion, made-up name
    entity_ids: tuple[str, ...]
    templates: tuple[int, ...]
    ask: Callable[[int], str]
    render: Callable[[int], Answer]


# ---------------------------------------------------------------- public API


def sample_entities(catalog: Catalog, config: GenerationConfig) -> Catalog:
    """The catalog, or the seeded sample of config.max_entities of its entities (the same for the same seed)."""
    if not config.max_entities or config.max_entities >= len(catalog.entities):
        return catalog
    ranks = _ranks(catalog, config.seed)
    kept = {i for i, r in ranks.items() if r < config.max_entities}
    return replace(catalog, entities=tuple(e for e in catalog.entities if e.id in kept))


def plan_size(catalog: Catalog, config: GenerationConfig | None = None, check: bool = False) -> DatasetPlan:
    """What the catalog allows. With check=True, also refuse a num_questions above it (too_many_questions)."""
    config = config or GenerationConfig()
    plan = _prepare(catalog, config)[1]
    if check and config.num_questions is not None and config.num_questions > plan.total:
        raise _too_many(config, plan)
    return plan


def fit_to_catalog(catalog: Catalog, config: GenerationConfig) -> tuple[GenerationConfig, str]:
    """A size that this catalog allows, as near the asked one as it can be: more variations first (up to the phrasings
    the types have), then what the catalog allows. Returns the config and why, in one line ("10 applications: 280
    questions possible at 3 variations, 560 at 6; using 560")."""
    wanted = config.num_questions
    plan = _prepare(catalog, config)[1]
    facts = _prepare(catalog, replace(config, variations=1))[1].total  # one question per fact
    if wanted is not None and wanted < 2 * facts and len(catalog.entities) > 2:
        # Too many facts for two phrasings each: a sample of the applications keeps two (all of them stay in RAG).
        kept = max(2, len(catalog.entities) * wanted // (2 * facts))
        sampled = replace(config, max_entities=kept)
        sized, _ = _fit_variations(sample_entities(catalog, sampled), sampled)
        return sized, (
            f"{plan.entities} applications: {plan.total} questions possible at {config.variations} variations, "
            f"under two per fact for {wanted}; a sample of {kept} applications keeps two (RAG still reads all "
            f"{plan.entities}); using {sized.num_questions}"
        )
    return _fit_variations(catalog, config)


def _fit_variations(catalog: Catalog, config: GenerationConfig) -> tuple[GenerationConfig, str]:
    """More variations first, then what the catalog allows (fit_to_catalog without the sampling)."""
    wanted = config.num_questions
    plan = _prepare(catalog, config)[1]
    if wanted is None or plan.total >= wanted:
        return (
            config,
            f"{plan.entities} applications: {plan.total} questions possible "
            f"at {config.variations} variations; using {wanted or plan.total}",
        )
    most = MOST_VARIATIONS
    tried = [(config.variations, plan.total)]
    chosen = None
    for variations in range(config.variations + 1, most + 1):
        total = _prepare(catalog, replace(config, variations=variations))[1].total
        tried.append((variations, total))
        if total >= wanted:
            chosen = variations
            break
    if chosen is None:
        chosen = max(tried, key=lambda t: (t[1], -t[0]))[0]
    # The plan counts phrasings; questions that come out the same (two applications sharing a name) count once:
    # generating everything this size allows says how many there really are (small catalogs only reach here).
    available = len(generate(catalog, replace(config, variations=chosen, num_questions=None)))
    used = min(wanted, available)
    return replace(config, variations=chosen, num_questions=used), _sizing(plan.entities, tried, used)


def _sizing(entities: int, tried: list[tuple[int, int]], used: int) -> str:
    first, last = tried[0], tried[-1]
    shown = f"{first[1]} questions possible at {first[0]} variations" + (
        f", {last[1]} at {last[0]}" if last != first else ""
    )
    return f"{entities} application{'s' if entities > 1 else ''}: {shown}; using {used}"


def generate(
    catalog: Catalog, config: GenerationConfig | None = None, on_progress: Progress | None = None
) -> tuple[Example, ...]:
    """The examples, interleaved type by type. on_progress, if given, receives the fraction done (0..1) a few times."""
    config = config or GenerationConfig()
    subjects, plan = _prepare(catalog, config)
    if config.num_questions is not None and config.num_questions > plan.total:
        raise _too_many(config, plan)
    seen: set[str] = set()
    quotas = _quotas(dict(plan.possible), config.num_questions, config.negative_ratio)
    pools = {t: _pool(t, subjects, catalog, config, seen, quotas.get(t, 0)) for t in plan.question_types}
    taken = _select(pools, dict(plan.possible), config, on_progress)
    examples = tuple(ex for row in zip_longest(*taken.values()) for ex in row if ex is not None)
    if config.num_questions is not None and len(examples) < config.num_questions:
        # Rare: repeated questions or exhausted made-up names left fewer examples than planned.
        raise _too_many(config, replace(plan, planned={t: len(taken[t]) for t in plan.question_types}))
    return examples


def regenerate_changed(
    old_examples: Sequence[Example], new_catalog: Catalog, diff: CatalogDiff, config: GenerationConfig | None = None
) -> tuple[Example, ...]:
    """Keep the examples of unchanged entities as they are; regenerate what the diff touches.

    Dropped: examples of removed/changed entities, comparisons involving them, listings and counts
    whose facts changed, made-up names now close to a new name. Added (from a fresh generation of the
    new catalog with the same config): examples of added/changed entities, the changed listings and
    counts, and as many made-up-name negatives as were dropped.
    """
    config = config or GenerationConfig()
    renewed = set(diff.added) | set(diff.changed)
    touched = renewed | set(diff.removed)
    current = _aggregate_facts(new_catalog, config)
    new_names = _NameIndex(e.name for e in new_catalog.entities if e.id in renewed)
    kept: list[Example] = []
    dropped: list[Example] = []
    for example in old_examples:
        (kept if _still_valid(example, touched, current, new_names) else dropped).append(example)
    stale_criteria = {_criterion_of(ex) for ex in dropped if ex.qtype in ("listing", "counting")}
    kept_facts = {fact_key(ex) for ex in kept}
    unknown_quota = sum(1 for ex in dropped if ex.qtype == "negative_unknown_entity")
    seen = {fold(ex.question) for ex in kept}
    added: list[Example] = []
    for example in generate(new_catalog, config):
        if fold(example.question) in seen:
            continue
        if example.qtype == "negative_unknown_entity":
            if unknown_quota <= 0:
                continue
            unknown_quota -= 1
        elif example.qtype in ("listing", "counting"):
            if fact_key(example) in kept_facts or not (
                _criterion_of(example) in stale_criteria or renewed & set(example.provenance.entity_ids)
            ):
                continue
        elif not renewed & set(example.provenance.entity_ids):
            continue
        seen.add(fold(example.question))
        added.append(example)
    return tuple(kept + added)


def every_phrasing(catalog: Catalog, config: GenerationConfig, entity_ids: Iterable[str]) -> tuple[Example, ...]:
    """Every phrasing the templates have of every per-application fact about these applications."""
    wanted = set(entity_ids)
    ranks = _ranks(catalog, config.seed)
    found: list[Example] = []
    for qtype in (t for t in config.selected_types() if t in ENTITY_TYPES):
        for subject in _subjects(qtype, catalog, config, ranks):
            if wanted & set(subject.entity_ids):
                found.extend(_example(subject, t, subject.ask(t), config) for t in subject.templates)
    return tuple(found)


def changed_fact_phrasings(
    old: Catalog, new: Catalog, config: GenerationConfig, entity_ids: Iterable[str]
) -> tuple[Example, ...]:
    """Every phrasing of the per-application facts `new` states about these applications and `old` did not (a
    changed status: each status question, and each definition, which says it). From the catalogs, not a dataset's
    sample of them: what a retraining teaches a change with (several paraphrases per fact) and asks it back with."""
    ids = tuple(entity_ids)
    before = {fact_key(e) for e in every_phrasing(old, config, ids)}
    return tuple(e for e in every_phrasing(new, config, ids) if fact_key(e) not in before)


def fake_names(catalog: Catalog, seed: int = 42) -> Iterator[str]:
    """Plausible application names that are not close to any name of the catalog (fold + similarity ratio)."""
    real = _NameIndex(e.name for e in catalog.entities)
    combos = [f"{p}{s}{t}" for p in _FAKE_PREFIXES for s in _FAKE_SUFFIXES for t in _FAKE_TAILS]
    random.Random(_stable_int(seed, "fake-names")).shuffle(combos)
    used: set[str] = set()
    for name in combos:
        key = fold(name)
        if key not in used and not real.is_close(name):
            used.add(key)
            yield name


# ---------------------------------------------------------------- configuration and plan


def _parse_types(value: str | Sequence[str]) -> set[str]:
    names = value.split(",") if isinstance(value, str) else list(value)
    wanted = {n.strip().lower().replace("-", "_") for n in names if n.strip()}
    if not wanted or "all" in wanted:
        return set(QUESTION_TYPES)
    unknown = sorted(wanted - set(QUESTION_TYPES))
    if unknown:
        raise DatasetError(
            "unknown_question_type",
            f"unknown question type(s) {', '.join(unknown)}; valid types: all, {', '.join(QUESTION_TYPES)}",
            {"unknown": unknown, "valid": list(QUESTION_TYPES)},
        )
    return wanted


def _validate(config: GenerationConfig) -> None:
    problems = []
    if config.num_questions is not None and config.num_questions < 1:
        problems.append(f"num_questions must be at least 1 (got {config.num_questions})")
    if config.variations < 1:
        problems.append(f"variations must be at least 1 (got {config.variations})")
    if not 0 <= config.negative_ratio < 1:
        problems.append(f"negative_ratio must be in [0, 1) (got {config.negative_ratio})")
    if problems:
        raise DatasetError("bad_config", "; ".join(problems))


def _prepare(catalog: Catalog, config: GenerationConfig) -> tuple[dict[str, list[_Subject]], DatasetPlan]:
    _validate(config)
    types = config.selected_types()
    if not types:
        raise DatasetError(
            "bad_config", "no question type left: add_negatives is off and only negative types were asked for"
        )
    ranks = _ranks(catalog, config.seed)
    # A sample of the applications (max_entities) is asked about; listings and counts stay true of the whole catalog,
    # and made-up names stay away from every real one (_pool reads the whole catalog).
    sample = sample_entities(catalog, config)
    subjects = {
        t: _subjects(t, catalog if t in ("listing", "counting") else sample, config, ranks)
        for t in types
        if t != "negative_unknown_entity"
    }
    possible = {t: sum(min(config.variations, len(s.templates)) for s in subjects[t]) for t in subjects}
    if "negative_unknown_entity" in types:
        possible["negative_unknown_entity"] = len(sample.entities) * min(
            config.variations, len(UNKNOWN_ENTITY_PHRASINGS)
        )
    positives = [t for t in types if t in POSITIVE_TYPES]
    if positives and not any(possible[t] for t in positives):
        raise _no_usable_field(positives)
    possible = {t: possible[t] for t in types}
    plan = DatasetPlan(
        len(sample.entities), types, config.variations, possible, _quotas(possible, None, config.negative_ratio)
    )
    return subjects, plan


def _no_usable_field(types: Sequence[str]) -> DatasetError:
    roles = list(dict.fromkeys(r for t in types for r in TYPE_ROLES[t]))
    return DatasetError(
        "no_usable_field",
        f"no question can be asked: the catalog's records fill none of the roles the selected types need "
        f"({', '.join(roles)}); only names are not enough. Fill these fields, or map them with a roles file.",
        {"roles": roles, "question_types": list(types)},
    )


def _too_many(config: GenerationConfig, plan: DatasetPlan) -> DatasetError:
    per_type = ", ".join(f"{t} {plan.planned[t]}" for t in plan.question_types)
    return DatasetError(
        "too_many_questions",
        f"{config.num_questions} questions asked, but this catalog allows at most {plan.total} with "
        f"{len(plan.question_types)} question types and {config.variations} variations ({per_type}). "
        f"Raise --variations (most types have 6 phrasings or more), select more types (--question-types all), "
        f"or ask for at most {plan.total} questions.",
        {"requested": config.num_questions, "maximum": plan.total, "planned": dict(plan.planned)},
    )


def _quotas(available: dict[str, int], requested: int | None, ratio: float) -> dict[str, int]:
    positives = {t: n for t, n in available.items() if t in POSITIVE_TYPES}
    negatives = {t: n for t, n in available.items() if t in NEGATIVE_TYPES}
    pos, neg = sum(positives.values()), sum(negatives.values())
    if requested is None:
        want_neg = neg if not positives else min(neg, round(pos * ratio / (1 - ratio)))
        want_pos = pos
    else:
        want_neg = min(neg, requested if not positives else round(requested * ratio))
        want_pos = min(pos, requested - want_neg)
        want_neg = min(neg, requested - want_pos)
    return {**_waterfill(want_pos, positives), **_waterfill(want_neg, negatives)}


def _waterfill(total: int, caps: dict[str, int]) -> dict[str, int]:
    """Split total as evenly as the caps allow; what is left goes to the types listed first."""
    quotas = dict.fromkeys(caps, 0)
    open_types = [t for t, cap in caps.items() if cap > 0]
    remaining = total
    while remaining > 0 and open_types:
        share, extra = divmod(remaining, len(open_types))
        for position, t in enumerate(open_types):
            add = min(share + (position < extra), caps[t] - quotas[t])
            quotas[t] += add
            remaining -= add
        open_types = [t for t in open_types if quotas[t] < caps[t]]
    return quotas


# ---------------------------------------------------------------- selection


PROGRESS_EVERY = 500  # examples between two progress reports: frequent enough to cancel promptly


def _select(
    pools: dict[str, Iterator[Example]],
    available: dict[str, int],
    config: GenerationConfig,
    on_progress: Progress | None,
) -> dict[str, list[Example]]:
    """Draw each type's quota; a type that runs short (repeated questions) hands its share to the others."""
    taken: dict[str, list[Example]] = {t: [] for t in pools}
    while True:
        quotas = _quotas(available, config.num_questions, config.negative_ratio)
        short = False
        for qtype, quota in quotas.items():
            got = taken[qtype]
            while len(got) < quota:
                example = next(pools[qtype], None)
                if example is None:
                    available[qtype] = len(got)
                    short = True
                    break
                got.append(example)
                if on_progress and len(got) % PROGRESS_EVERY == 0:
                    on_progress(min(1.0, sum(map(len, taken.values())) / max(sum(quotas.values()), 1)))
            if on_progress:
                on_progress(min(1.0, sum(map(len, taken.values())) / max(sum(quotas.values()), 1)))
        if not short:
            return {t: taken[t][: quotas[t]] for t in pools}


def _pool(
    qtype: str,
    subjects: dict[str, list[_Subject]],
    catalog: Catalog,
    config: GenerationConfig,
    seen: set[str],
    quota: int = 0,
) -> Iterator[Example]:
    if qtype == "negative_unknown_entity":
        return _unknown_pool(catalog, config, seen)
    # Empty-field negatives are many and their quota small: two phrasings per fact keep some for evaluation. So are a
    # large catalog's listings and counts (a criterion per status, domain, actor… of 1,000 applications): when one
    # phrasing each would fill the quota, two each, or none would reach the test split.
    many = qtype in ("listing", "counting") and quota and len(subjects[qtype]) >= quota
    return _round_robin(subjects[qtype], config, seen, batch=2 if qtype == "negative_empty_field" or many else 1)


def _round_robin(
    subjects: Sequence[_Subject], config: GenerationConfig, seen: set[str], batch: int = 1
) -> Iterator[Example]:
    """First phrasing of every subject, then the second…; a repeated question falls back on a spare phrasing.

    With batch=2, each subject gives two phrasings per round, so that even a small quota has facts
    asked twice (the paraphrase split can then test one and teach the other).
    """
    spares: dict[int, Iterator[int]] = {}
    for first in range(0, config.variations, batch):
        for n, subject in enumerate(subjects):
            for round_ in range(first, min(first + batch, config.variations, len(subject.templates))):
                spare = spares.setdefault(n, iter(subject.templates[config.variations :]))
                example = _first_new(subject, chain((subject.templates[round_],), spare), config, seen)
                if example:
                    yield example


def _unknown_pool(catalog: Catalog, config: GenerationConfig, seen: set[str]) -> Iterator[Example]:
    """Made-up names one after the other (they are interchangeable), `variations` phrasings each."""
    for name in fake_names(catalog, config.seed):
        subject = _unknown_subject(name, config.seed)
        spare = iter(subject.templates[config.variations :])
        for template in subject.templates[: config.variations]:
            example = _first_new(subject, chain((template,), spare), config, seen)
            if example:
                yield example


def _first_new(subject: _Subject, templates: Iterable[int], config: GenerationConfig, seen: set[str]) -> Example | None:
    for template in templates:
        question = subject.ask(template)
        key = fold(question)
        if key not in seen:
            seen.add(key)
            return _example(subject, template, question, config)
    return None


def _example(subject: _Subject, template: int, question: str, config: GenerationConfig) -> Example:
    answer = subject.render(template)
    template_id = f"{subject.qtype}.{template}"
    provenance = Provenance(
        entity_ids=subject.entity_ids,
        fields=answer.fields,
        template=template_id,
        key_facts=answer.key_facts,
        negative=subject.qtype in NEGATIVE_TYPES,
    )
    example_id = hashlib.blake2b(f"{template_id}\x1f{subject.key}".encode(), digest_size=8).hexdigest()
    return Example(example_id, subject.qtype, question, answer.text, provenance, config.system_prompt)


# ---------------------------------------------------------------- subjects


def _stable_int(*parts: object) -> int:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _ranks(catalog: Catalog, seed: int) -> dict[str, int]:
    """Each entity's place in the seeded round-robin order."""
    ids = [e.id for e in catalog.entities]
    random.Random(_stable_int(seed, "entities")).shuffle(ids)
    return {entity_id: rank for rank, entity_id in enumerate(ids)}


def _seeded_order(indices: Iterable[int], *seed_parts: object) -> tuple[int, ...]:
    """A permutation drawn from a stable hash of seed_parts (its digits in the factorial number system)."""
    pool = list(indices)
    number = _stable_int(*seed_parts)
    order = []
    while pool:
        number, pick = divmod(number, len(pool))
        order.append(pool.pop(pick))
    return tuple(order)


def _once(render: Callable[[int], Answer], style: Callable[[int], object] = lambda _: None) -> Callable[[int], Answer]:
    """Render each answer style once (answers are the same for every phrasing, except oui/non)."""
    cache: dict[object, Answer] = {}

    def cached(template: int) -> Answer:
        key = style(template)
        if key not in cache:
            cache[key] = render(template)
        return cache[key]

    return cached


def _asker(table: Sequence[str], mentions: Sequence[str], seed: int, fixed: dict[str, str]) -> Callable[[int], str]:
    """Questions name the subject in one of its mentions, the short name twice as often as the others."""
    weights = [0, 0, *range(1, len(mentions))]

    def ask(template: int) -> str:
        mention = mentions[weights[(seed >> (2 * (template % 30))) % len(weights)]]
        return table[template].format(**fixed, **mention_fields(mention))

    return ask


def _subjects(qtype: str, catalog: Catalog, config: GenerationConfig, ranks: dict[str, int]) -> list[_Subject]:
    if qtype in ENTITY_TYPES:
        found = [(e, s) for e in catalog.entities for s in _entity_subjects(qtype, e, config.seed)]
    elif qtype == "negative_empty_field":
        roles = _empty_field_roles(catalog, config)
        found = [(e, s) for e in catalog.entities for s in _empty_field_subjects(e, roles, config.seed)]
    elif qtype == "comparative":
        found = [(a, _comparative_subject(a, b, config.seed)) for a, b in _pairs(catalog, ranks)]
    else:
        subjects = [_criterion_subject(qtype, c, config.seed) for c in _criteria(catalog)]
        random.Random(_stable_int(config.seed, qtype)).shuffle(subjects)
        return subjects
    return _entity_order(qtype, found, ranks)


def _entity_order(qtype: str, found: list[tuple[Entity, _Subject]], ranks: dict[str, int]) -> list[_Subject]:
    """Round-robin over entities (an entity's 2nd subject comes after everyone's 1st), each type from its own offset."""
    size = max(len(ranks), 1)
    offset = QUESTION_TYPES.index(qtype) * size // len(QUESTION_TYPES)
    occurrence: dict[str, int] = {}
    keyed = []
    for entity, subject in found:
        nth = occurrence[entity.id] = occurrence.get(entity.id, -1) + 1
        keyed.append(((nth, (ranks[entity.id] - offset) % size), subject))
    keyed.sort(key=lambda item: item[0])
    return [subject for _, subject in keyed]


def _entity_answer(qtype: str, entity: Entity, template: int, variant: int) -> Answer:
    """The registry's answer; the status type's yes/no phrasing gets the oui/non form."""
    if qtype == "status" and template == STATUS_YES_NO:
        return answer_status(entity, yes_no=True, variant=variant)
    return INTENTS[qtype].render(entity, variant)


def _context_variant(seed: int, qtype: str, key: str) -> int:
    """How a subject's answer phrases its added context: drawn from the seed, like its phrasings."""
    return _stable_int(seed, "context", qtype, key)


def _entity_subjects(qtype: str, entity: Entity, seed: int) -> list[_Subject]:
    if qtype == "related":
        subjects = []
        for role, indices in (("related_applications", RELATED_APPLICATIONS), ("related_data", RELATED_DATA)):
            if getattr(entity, role):
                variant = _context_variant(seed, qtype, f"{entity.id}|{role}")
                render = _once(lambda _, r=role, v=variant: answer_related(entity, r, v))
                subjects.append(_entity_subject(qtype, entity, role, indices, render, seed))
        return subjects
    if not _applies(qtype, entity):
        return []
    style = (lambda t: t == STATUS_YES_NO) if qtype == "status" else (lambda _: None)
    variant = _context_variant(seed, qtype, entity.id)
    render = _once(lambda t: _entity_answer(qtype, entity, t, variant), style)
    return [_entity_subject(qtype, entity, "", range(len(PHRASINGS[qtype])), render, seed)]


def _applies(qtype: str, entity: Entity) -> bool:
    return any(i.applies(entity) for i in intents_of_type(qtype))


def _entity_subject(
    qtype: str, entity: Entity, part: str, indices: Iterable[int], render: Callable[[int], Answer], seed: int
) -> _Subject:
    key = f"{entity.id}|{part}" if part else entity.id
    subject_seed = _stable_int(seed, qtype, key)
    ask = _asker(PHRASINGS[qtype], entity_mentions(entity), subject_seed, {"name": entity.name})
    return _Subject(qtype, key, (entity.id,), _seeded_order(indices, subject_seed), ask, render)


def _empty_field_roles(catalog: Catalog, config: GenerationConfig) -> tuple[str, ...]:
    """Roles worth a "non renseigné" answer: some record fills them, and their type is selected."""
    selected = [t for t in config.selected_types() if t in POSITIVE_TYPES] or list(POSITIVE_TYPES)
    roles = []
    for role, (qtype, _) in EMPTY_FIELD_SOURCES.items():
        fills = ("description", "long_name") if role == "description" else (role,)
        if qtype in selected and any(role_filled(e, r) for e in catalog.entities for r in fills):
            roles.append(role)
    return tuple(roles)


_EMPTY_FIELD_TABLE = tuple(text for _, text in EMPTY_FIELD_PHRASINGS)
_EMPTY_FIELD_INDICES = {
    role: tuple(i for i, (r, _) in enumerate(EMPTY_FIELD_PHRASINGS) if r == role) for role in EMPTY_FIELD_SOURCES
}


def _empty_field_subjects(entity: Entity, roles: Sequence[str], seed: int) -> list[_Subject]:
    subjects = []
    for role in roles:
        empty = not _applies("definition", entity) if role == "description" else not getattr(entity, role)
        if not empty:
            continue
        key = f"{entity.id}|{role}"
        subject_seed = _stable_int(seed, "negative_empty_field", key)
        ask = _asker(_EMPTY_FIELD_TABLE, entity_mentions(entity), subject_seed, {"name": entity.name})
        variant = _context_variant(seed, "negative_empty_field", key)
        render = _once(lambda t, r=role, v=variant: answer_empty_field(entity, r, t, v), lambda t: t % 2)
        order = _seeded_order(_EMPTY_FIELD_INDICES[role], subject_seed)
        subjects.append(_Subject("negative_empty_field", key, (entity.id,), order, ask, render))
    return subjects


def _pairs(catalog: Catalog, ranks: dict[str, int]) -> list[tuple[Entity, Entity]]:
    """Disjoint pairs, of applications sharing their main domain when possible (linear, no all-pairs scan)."""
    eligible = sorted((e for e in catalog.entities if comparable(e)), key=lambda e: ranks[e.id])
    groups: dict[str, list[Entity]] = {}
    for entity in eligible:
        groups.setdefault(fold(entity.domains[0].domain) if entity.domains else "", []).append(entity)
    pairs: list[tuple[Entity, Entity]] = []
    leftovers = groups.pop("", [])
    for members in groups.values():
        pairs += zip(members[0::2], members[1::2], strict=False)
        if len(members) % 2:
            leftovers.append(members[-1])
    leftovers.sort(key=lambda e: ranks[e.id])
    pairs += zip(leftovers[0::2], leftovers[1::2], strict=False)
    return pairs


def _comparative_subject(a: Entity, b: Entity, seed: int) -> _Subject:
    key = f"{a.id}|{b.id}"
    subject_seed = _stable_int(seed, "comparative", key)
    table = PHRASINGS["comparative"]

    def ask(template: int) -> str:
        # Mostly the short names; now and then "l'application X".
        form_a, form_b = (
            entity_mentions(e)[_stable_int(subject_seed, template, side) % 3 == 0] for side, e in (("a", a), ("b", b))
        )
        return table[template].format(**mention_fields(form_a, "a"), **mention_fields(form_b, "b"))

    render = _once(lambda _: answer_comparative(a, b))
    return _Subject("comparative", key, (a.id, b.id), _seeded_order(range(len(table)), subject_seed), ask, render)


def _criteria(catalog: Catalog) -> list[Criterion]:
    """Listing criteria: every status, every domain, every actor of at least MIN_ACTOR_APPLICATIONS applications."""
    statuses: dict[str, tuple[str, list[Entity]]] = {}
    domains: dict[str, tuple[str, list[Entity]]] = {}
    actors: dict[str, tuple[str, list[Entity]]] = {}
    for entity in catalog.entities:
        if entity.status:
            _add_member(statuses, entity.status, entity)
        for domain in entity.domains:
            _add_member(domains, domain.domain, entity)
        for actor in entity.actors:
            _add_member(actors, actor.name, entity)
    criteria = [Criterion.of_status(v, tuple(m)) for v, m in statuses.values()]
    criteria += [Criterion.of_domain(v, tuple(m)) for v, m in domains.values()]
    criteria += [Criterion.of_actor(v, tuple(m)) for v, m in actors.values() if len(m) >= MIN_ACTOR_APPLICATIONS]
    return criteria


def _add_member(groups: dict[str, tuple[str, list[Entity]]], value: str, entity: Entity) -> None:
    _, members = groups.setdefault(fold(value), (value, []))
    if not members or members[-1] is not entity:
        members.append(entity)


def _criterion_subject(qtype: str, criterion: Criterion, seed: int) -> _Subject:
    key = f"{criterion.role}|{fold(criterion.fact)}"
    table = PHRASINGS[qtype]
    variant = _context_variant(seed, qtype, key)
    if qtype == "listing":
        entity_ids = tuple(e.id for e in listed_members(criterion))
        render = _once(lambda _: answer_listing(criterion, variant))
    else:
        entity_ids = tuple(e.id for e in criterion.members)
        render = _once(lambda _: answer_counting(criterion, variant))

    def ask(template: int) -> str:
        return table[template].format(adj=criterion.adj, verb=criterion.verb)

    order = _seeded_order(range(len(table)), seed, qtype, key)
    return _Subject(qtype, key, entity_ids, order, ask, render)


def _unknown_subject(name: str, seed: int) -> _Subject:
    key = fold(name)
    subject_seed = _stable_int(seed, "negative_unknown_entity", key)
    ask = _asker(UNKNOWN_ENTITY_PHRASINGS, (name, f"l'application {name}"), subject_seed, {"name": name})
    render = _once(lambda t: answer_unknown_entity(name, t), lambda t: t % 3)
    order = _seeded_order(range(len(UNKNOWN_ENTITY_PHRASINGS)), subject_seed)
    return _Subject("negative_unknown_entity", key, (), order, ask, render)


# ---------------------------------------------------------------- made-up names

_FAKE_PREFIXES = (
    "ALTI",
    "AQUA",
    "ARBO",
    "AZUR",
    "BALIS",
    "CALIS",
    "CARTA",
    "CEDRA",
    "CIRRA",
    "DELTA",
    "DOMI",
    "ECHO",
    "ELIA",
    "FLORI",
    "GALA",
    "GRANI",
    "HELIO",
    "ISO",
    "JADE",
    "KORA",
    "LUMI",
    "MAREO",
    "MIRA",
    "NOVA",
    "OKAPI",
    "ORBI",
    "PALO",
    "QUARTZ",
    "RADI",
    "SELE",
    "SOLVI",
    "TERRI",
    "TIVA",
    "ULTRA",
    "VALO",
    "VECTO",
    "XENO",
    "ZEPHI",
    "ZENI",
    "OPTI",
)
_FAKE_SUFFIXES = (
    "BASE",
    "CAP",
    "DOC",
    "FLOW",
    "GEST",
    "LINK",
    "LOG",
    "NET",
    "PLAN",
    "PORT",
    "SCOPE",
    "SIS",
    "STAT",
    "TRACK",
    "WEB",
    "DATA",
    "LAB",
    "MAP",
    "VIEW",
    "MIND",
)
_FAKE_TAILS = ("", "", "-2", " PRO", " NG")


_SHORT_NAME = 6  # names shorter than this are compared as soon as they share one bigram


def _compact(name: str) -> str:
    return fold(name).replace(" ", "")


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


class _NameIndex:
    """Real names indexed by character bigrams, so a candidate is compared only with names it shares one with."""

    def __init__(self, names: Iterable[str]):
        self._names = list(dict.fromkeys(c for c in map(_compact, names) if c))
        self._exact = set(self._names)
        self._by_bigram: dict[str, list[int]] = {}
        for position, name in enumerate(self._names):
            for bigram in _bigrams(name):
                self._by_bigram.setdefault(bigram, []).append(position)

    def is_close(self, candidate: str) -> bool:
        compact = _compact(candidate)
        if compact in self._exact:
            return True
        shared: dict[int, int] = {}
        for bigram in _bigrams(compact):
            for position in self._by_bigram.get(bigram, ()):
                shared[position] = shared.get(position, 0) + 1
        matcher = SequenceMatcher(None, b=compact, autojunk=False)
        for position, count in sorted(shared.items()):
            real = self._names[position]
            if count < 2 and min(len(real), len(compact)) >= _SHORT_NAME:
                continue  # one common bigram between two long names: not a near-duplicate
            if (len(real) >= 4 and (real in compact or compact in real)) or _ratio(matcher, real) >= SIMILARITY_LIMIT:
                return True
        return False


def _ratio(matcher: SequenceMatcher, real: str) -> float:
    matcher.set_seq1(real)
    return (
        0.0
        if matcher.real_quick_ratio() < SIMILARITY_LIMIT or matcher.quick_ratio() < SIMILARITY_LIMIT
        else matcher.ratio()
    )


# ---------------------------------------------------------------- retraining support


def _aggregate_facts(catalog: Catalog, config: GenerationConfig) -> dict[tuple[Any, ...], str]:
    """The listing and counting facts as the catalog states them now, with their answers.

    The answer is compared too: it also names its applications (and, when short, their long names),
    which can change while the criterion, the members and the count stay the same.
    """
    facts = {}
    for criterion in _criteria(catalog):
        for qtype in ("listing", "counting"):
            subject = _criterion_subject(qtype, criterion, config.seed)
            answer = subject.render(0)
            facts[(qtype, subject.entity_ids, answer.fields, answer.key_facts)] = answer.text
    return facts


def _criterion_of(example: Example) -> tuple[Any, ...]:
    """A listing's criterion: its first key fact ("en production", a domain, an actor)."""
    facts = example.provenance.key_facts
    return (example.qtype, example.provenance.fields, fold(facts[0]) if facts else "")


def _still_valid(
    example: Example, touched: set[str], current: dict[tuple[Any, ...], str], new_names: _NameIndex
) -> bool:
    if example.qtype == "negative_unknown_entity":
        name = unknown_name_in(example.answer)
        return name is None or not new_names.is_close(name)
    if example.qtype in ("listing", "counting"):
        return current.get(fact_key(example)) == example.answer
    return not touched & set(example.provenance.entity_ids)


__all__ = [
    "CATALOG_WIDE_TYPES",
    "ENTITY_TYPES",
    "fit_to_catalog",
    "sample_entities",
    "POSITIVE_TYPES",
    "TYPE_ROLES",
    "DatasetPlan",
    "GenerationConfig",
    "fake_names",
    "generate",
    "plan_size",
    "regenerate_changed",
]
