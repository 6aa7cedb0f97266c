"""The Ollama TEMPLATE of a model, derived from its tokenizer's own chat template (never written by hand).

How: the chat template (Jinja, applied by the tokenizer) is rendered for conversations whose contents
are unique markers. Cutting the renderings at the markers gives what the template writes around each
role's content: the start of a conversation (with the default system prompt some templates add when
there is none), the text before and after a system, user and assistant message, and the generation
prompt. Those pieces become a Go template over Ollama's `.Messages` (`derive_ollama_template`).

Then it is checked: the Go template, evaluated by `dyag_core.export.gotemplate` as Ollama's Go
text/template would, must render exactly what the tokenizer renders for sample conversations (a
question, a multi-turn exchange, a question without a system prompt, French text with newlines). A chat
template that cannot be expressed that way (one that merges the system prompt into the first user turn,
or that refuses a role order) is refused with the reason: an export never ships a template that
prompts the model differently from how it was trained.

Conventions of Ollama kept here: the last message, when it is the assistant's, is left open (Ollama
continues it); the generation prompt follows the last message otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dyag_core.errors import DyagError
from dyag_core.export.gotemplate import GoTemplateError, render

Messages = list[dict[str, str]]
# render(messages, add_generation_prompt) -> the text the tokenizer's chat template writes
ChatRenderer = Callable[[Messages, bool], str]

_M = "\u2063DYAG{}\u2063"  # invisible separator around a counter: never in a real template, never trimmed
SAMPLE_SYSTEM = (
    "Tu es un assistant expert en applications du système d'information français.\n"
    "Tu réponds de manière précise et concise."
)
SAMPLE_CONVERSATIONS: tuple[tuple[Messages, bool], ...] = (
    (
        [
            {"role": "system", "content": SAMPLE_SYSTEM},
            {"role": "user", "content": "Quel est le domaine de l'application INSPECTA ?"},
        ],
        True,
    ),
    (
        [
            {"role": "system", "content": SAMPLE_SYSTEM},
            {"role": "user", "content": "Qu'est-ce que 6tzen ?"},
            {
                "role": "assistant",
                "content": "6tzen est une application de dématérialisation des démarches.\nElle est en production.",
            },
            {"role": "user", "content": "Qui en est le responsable ? Réponds « en une phrase »."},
        ],
        True,
    ),
    ([{"role": "user", "content": "Bonjour, que sais-tu faire ?"}], True),
    (
        [
            {"role": "system", "content": SAMPLE_SYSTEM},
            {"role": "user", "content": "Statut de PILOTE-BOP ?"},
            {"role": "assistant", "content": "PILOTE-BOP est en production."},
        ],
        False,
    ),
)


class TemplateError(DyagError):
    def __init__(self, message: str):
        super().__init__("unsupported_chat_template", message)


@dataclass(frozen=True, slots=True)
class OllamaTemplate:
    """The Go template, the stop sequences, and the pieces it was made of (for the export's report)."""

    template: str
    stop: tuple[str, ...]
    start_with_system: str  # the start of a conversation that begins with a system message, up to its content
    start_without_system: str  # the start of one that does not (with a default system prompt, if any)
    system: tuple[str, str]  # before and after a system message's content (not the first message)
    user: tuple[str, str]
    assistant: tuple[str, str]
    generation_prompt: str


def _split(text: str, markers: Sequence[str]) -> list[str]:
    """text cut at each marker, in order; each must appear exactly once."""
    parts, rest = [], text
    for marker in markers:
        if rest.count(marker) != 1 or text.count(marker) != 1:
            raise TemplateError(
                f"the chat template does not write each message's content once and in order ({marker!r})"
            )
        before, rest = rest.split(marker)
        parts.append(before)
    parts.append(rest)
    return parts


def _remove_prefix(text: str, prefix: str, what: str) -> str:
    if not text.startswith(prefix):
        raise TemplateError(f"the chat template is not incremental: {what}")
    return text[len(prefix) :]


def _remove_suffix(text: str, suffix: str, what: str) -> str:
    if suffix and not text.endswith(suffix):
        raise TemplateError(f"the chat template is not incremental: {what}")
    return text[: len(text) - len(suffix)] if suffix else text


def _go_literal(text: str) -> str:
    """Text as Go template source: literal, except "{{" which must be written as an action."""
    return text.replace("{{", '{{ "{{" }}')


def _call(render_chat: ChatRenderer, messages: Messages, add_generation_prompt: bool) -> str:
    try:
        return render_chat(messages, add_generation_prompt)
    except Exception as exc:  # a template that raises on this role order (jinja2's TemplateError, …)
        raise TemplateError(
            f"the chat template refuses a {'/'.join(m['role'] for m in messages)} conversation: {exc}"
        ) from None


def _pieces(render_chat: ChatRenderer) -> dict[str, str]:
    s, u1, a1, u2, s2 = (_M.format(i) for i in range(5))
    sys_msg, user1, asst1, user2 = (
        {"role": r, "content": c} for r, c in (("system", s), ("user", u1), ("assistant", a1), ("user", u2))
    )
    convo = [sys_msg, user1, asst1, user2]
    full = _call(render_chat, convo, False)
    with_prompt = _call(render_chat, convo, True)
    generation_prompt = _remove_prefix(with_prompt, full, "the generation prompt is not appended to the conversation")
    p0, p1, p2, p3, p4 = _split(full, [s, u1, a1, u2])
    only_system = _call(render_chat, [sys_msg], False)
    start_with_system, after_system = _split(only_system, [s])
    if start_with_system != p0:
        raise TemplateError(
            "the chat template starts a conversation differently depending on what follows the system message"
        )
    post_system = after_system
    pre_user = _remove_prefix(p1, post_system, "a user message does not follow the system message's rendering")
    post_user = p4
    pre_assistant = _remove_prefix(p2, post_user, "an assistant message does not follow the user message's rendering")
    post_assistant = _remove_suffix(p3, pre_user, "a user message does not follow the assistant message's rendering")
    no_system = _call(render_chat, [user1], False)
    start, rest = _split(no_system, [u1])
    start_without_system = _remove_suffix(start, pre_user, "a conversation without a system message starts oddly")
    if rest != post_user:
        raise TemplateError("a user message is rendered differently when it opens the conversation")
    # A system message later in the conversation (Ollama may send one): its own prefix, if the template allows it.
    pre_system = ""
    try:
        later = render_chat([user1, {"role": "system", "content": s2}], False)
        head, tail = _split(later, [u1, s2])[1:]
        pre_system = _remove_prefix(head, post_user, "")
        if tail != post_system:
            pre_system = ""
    except Exception:
        pre_system = ""
    return {
        "start_with_system": start_with_system,
        "start_without_system": start_without_system,
        "pre_system": pre_system,
        "post_system": post_system,
        "pre_user": pre_user,
        "post_user": post_user,
        "pre_assistant": pre_assistant,
        "post_assistant": post_assistant,
        "generation_prompt": generation_prompt,
    }


def build_go_template(p: dict[str, str]) -> str:
    g = {k: _go_literal(v) for k, v in p.items()}
    return (
        "{{ range $i, $m := .Messages }}"
        "{{ $last := eq (len (slice $.Messages $i)) 1 }}"
        '{{ if eq $m.Role "system" }}'
        f"{{{{ if eq $i 0 }}}}{g['start_with_system']}{{{{ else }}}}{g['pre_system']}{{{{ end }}}}"
        f"{{{{ $m.Content }}}}{g['post_system']}"
        "{{ else }}"
        f"{{{{ if eq $i 0 }}}}{g['start_without_system']}{{{{ end }}}}"
        f'{{{{ if eq $m.Role "user" }}}}{g["pre_user"]}{{{{ $m.Content }}}}{g["post_user"]}'
        f'{{{{ else if eq $m.Role "assistant" }}}}{g["pre_assistant"]}{{{{ $m.Content }}}}'
        f"{{{{ if not $last }}}}{g['post_assistant']}{{{{ end }}}}"
        "{{ end }}"
        "{{ end }}"
        f'{{{{ if and $last (ne $m.Role "assistant") }}}}{g["generation_prompt"]}{{{{ end }}}}'
        "{{ end }}"
    )


def stop_sequences(p: dict[str, str], special_tokens: Sequence[str], eos_token: str | None) -> tuple[str, ...]:
    """What ends the assistant's turn: the end-of-sequence token, and the special tokens the template writes
    after an assistant message or before the next user message (the model may emit either)."""
    stops: list[str] = []
    if eos_token:
        stops.append(eos_token)
    for piece in (p["post_assistant"], p["pre_user"]):
        found = sorted((piece.find(t), t) for t in special_tokens if t and t in piece)
        stops += [t for _, t in found]
    if not stops and p["post_assistant"].strip():
        stops.append(p["post_assistant"].strip())
    return tuple(dict.fromkeys(stops))


def expected_prompt(
    render_chat: ChatRenderer, messages: Messages, add_generation_prompt: bool, post_assistant: str
) -> str:
    """What the Go template must render: the tokenizer's text, with a final assistant message left open."""
    text = _call(render_chat, messages, add_generation_prompt)
    if messages and messages[-1]["role"] == "assistant" and not add_generation_prompt:
        text = _remove_suffix(text, post_assistant, "the last assistant message is not closed as the others")
    return text


def render_messages(template: str, messages: Messages) -> str:
    """The prompt Ollama builds from this TEMPLATE for a conversation."""
    return render(template, {"Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]})


def derive_ollama_template(
    render_chat: ChatRenderer,
    *,
    special_tokens: Sequence[str] = (),
    eos_token: str | None = None,
    samples: Sequence[tuple[Messages, bool]] = SAMPLE_CONVERSATIONS,
) -> OllamaTemplate:
    """The Ollama TEMPLATE equivalent to a chat template, verified on sample conversations (TemplateError if none
    is)."""
    pieces = _pieces(render_chat)
    template = build_go_template(pieces)
    for messages, add_generation_prompt in samples:
        want = expected_prompt(render_chat, messages, add_generation_prompt, pieces["post_assistant"])
        try:
            got = render_messages(template, messages)
        except GoTemplateError as exc:  # pragma: no cover - the emitted subset is what the evaluator reads
            raise TemplateError(f"the derived template does not evaluate: {exc}") from None
        if got != want:
            raise TemplateError(
                "the chat template cannot be expressed as an Ollama template over .Messages "
                f"(for a {'/'.join(m['role'] for m in messages)} conversation "
                f"it renders {want!r}, the derived template {got!r})"
            )
    return OllamaTemplate(
        template=template,
        stop=stop_sequences(pieces, special_tokens, eos_token),
        start_with_system=pieces["start_with_system"],
        start_without_system=pieces["start_without_system"],
        system=(pieces["pre_system"], pieces["post_system"]),
        user=(pieces["pre_user"], pieces["post_user"]),
        assistant=(pieces["pre_assistant"], pieces["post_assistant"]),
        generation_prompt=pieces["generation_prompt"],
    )
