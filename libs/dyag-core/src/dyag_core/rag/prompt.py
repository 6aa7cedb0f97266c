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


@dataclass(frozen=True, slots=True)
class ContextChunk:
    entity_id: str
    entity_name: str
    text: str


def format_context(chunks: Sequence[ContextChunk]) -> str:
    blocks = [f"[{i}] source : [{c.entity_id} {c.entity_name}]\n{c.text.strip()}" for i, c in enumerate(chunks, start=1)]
    return "\n\n".join(blocks)


def build_messages(question: str, chunks: Sequence[ContextChunk], system_prompt: str = SYSTEM_PROMPT) -> list[dict[str, str]]:
    context = format_context(chunks) if chunks else "(aucun extrait du catalogue ne correspond à la question)"
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
