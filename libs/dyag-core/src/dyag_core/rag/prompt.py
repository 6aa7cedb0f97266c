"""The French prompt of the RAG answer: answer from the context only, cite sources, say when it does not know."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dyag_core.text import fold

NO_ANSWER = "Je ne sais pas"

SYSTEM_PROMPT = (
    "Tu es un assistant expert du catalogue des applications du système d'information. "
    "Réponds uniquement à partir des extraits du catalogue donnés dans le contexte, sans rien ajouter "
    "de tes connaissances. Cite tes sources : après chaque fait, l'identifiant et le nom de l'application "
    "entre crochets, par exemple [1503 GEOVAL]. Si le contexte ne contient pas la réponse, ou si "
    "l'application demandée n'y figure pas, réponds « Je ne sais pas » et n'invente rien. "
    "Réponds en français, en quelques phrases."
)
# The same rules in a third of the tokens, for a small local model whose time on a CPU grows with the prompt.
COMPACT_SYSTEM_PROMPT = (
    "Réponds en français, en une ou deux phrases, uniquement à partir du contexte. Cite la source entre crochets, "
    f"par exemple [1503 GEOVAL]. Si le contexte ne contient pas la réponse, réponds « {NO_ANSWER} »."
)


@dataclass(frozen=True, slots=True)
class ContextChunk:
    entity_id: str
    entity_name: str
    text: str


MIN_CHUNK_CHARS = 160  # in a compact context, a chunk that would get less than this is left out (and the ones after it)
COMPACT_MAX_CHUNKS = 3  # a compact context keeps the first three chunks (retrieval puts the answer's first)


def format_context(chunks: Sequence[ContextChunk]) -> str:
    blocks = [
        f"[{i}] source : [{c.entity_id} {c.entity_name}]\n{c.text.strip()}" for i, c in enumerate(chunks, start=1)
    ]
    return "\n\n".join(blocks)


def compact_chunks(chunks: Sequence[ContextChunk], max_chars: int) -> list[ContextChunk]:
    """The first COMPACT_MAX_CHUNKS chunks, in their order, cut to fit max_chars of text in all: each gets an even
    share of what is left (what a short chunk does not use goes to the next ones), cut at a line end, else a word end.
    For small local models, whose time on a CPU grows with the prompt. max_chars <= 0: the chunks unchanged."""
    if max_chars <= 0:
        return list(chunks)
    chunks = list(chunks)[:COMPACT_MAX_CHUNKS]
    out: list[ContextChunk] = []
    remaining = max_chars
    for i, chunk in enumerate(chunks):
        share = remaining // (len(chunks) - i)
        if share < MIN_CHUNK_CHARS:
            break
        text = _cut(chunk.text.strip(), share)
        out.append(ContextChunk(chunk.entity_id, chunk.entity_name, text))
        remaining -= len(text)
    return out


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    for mark in ("\n", " "):
        cut = text.rfind(mark, 0, limit - 1)
        if cut > limit // 2:
            return text[:cut].rstrip() + " …"
    return text[: limit - 2] + " …"


def build_messages(
    question: str, chunks: Sequence[ContextChunk], system_prompt: str = SYSTEM_PROMPT, *, max_context_chars: int = 0
) -> list[dict[str, str]]:
    """The answer prompt. max_context_chars > 0, a small local model's budget, makes it compact: the context cut to that
    many characters (compact_chunks) and, with the default system prompt, its short form (COMPACT_SYSTEM_PROMPT)."""
    compact = max_context_chars > 0
    chunks = compact_chunks(chunks, max_context_chars)
    if compact:  # each chunk's text starts with its entity's name and id already
        context = (
            "\n\n".join(c.text for c in chunks)
            if chunks
            else "(aucun extrait du catalogue ne correspond à la question)"
        )
    else:
        context = format_context(chunks) if chunks else "(aucun extrait du catalogue ne correspond à la question)"
    if compact:
        system = COMPACT_SYSTEM_PROMPT if system_prompt is SYSTEM_PROMPT else system_prompt
        user = f"Contexte :\n{context}\n\nQuestion : {question}"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    user = (
        f"Contexte (extraits du catalogue) :\n{context}\n\n"
        f"Question : {question}\n\n"
        "Réponds à partir du contexte seulement, en citant les sources entre crochets ; "
        f"si la réponse n'y est pas, réponds « {NO_ANSWER} »."
    )
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


def abstention(unknown: Sequence[str]) -> str:
    """The answer when the question names something the catalog does not have."""
    names = ", ".join(f"« {u} »" for u in unknown)
    verb = "ne figure" if len(unknown) == 1 else "ne figurent"
    return f"{NO_ANSWER} : {names} {verb} pas dans le catalogue, je n'ai donc aucune information à ce sujet."


def is_abstention(answer: str) -> bool:
    return fold(answer).startswith(fold(NO_ANSWER)) or "je ne sais pas" in fold(answer)


def cited_entities(answer: str, entities: Sequence[tuple[str, str]]) -> list[str]:
    """The ids of the entities (id, name) the answer names, by id or by name, in the order given."""
    folded = f" {fold(answer)} "
    cited = []
    for entity_id, name in entities:
        by_id = re.search(rf"(?<![0-9A-Za-z]){re.escape(entity_id)}(?![0-9A-Za-z])", answer) is not None
        by_name = bool(name) and f" {fold(name)} " in folded
        if by_id or by_name:
            cited.append(entity_id)
    return list(dict.fromkeys(cited))
