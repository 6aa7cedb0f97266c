"""The Ollama TEMPLATE derived from a tokenizer's chat template, and the Go template evaluator that checks it.

The evaluator is tested on Go text/template semantics first (trim markers, and/or returning their deciding
argument, variables, range/else, index/slice/len), and on a real Ollama template; then the derived template
of the default model (SmolLM2-135M-Instruct), taken back out of the Modelfile text, must render exactly the
prompt the tokenizer's own chat template renders, for every sample conversation. Other chat templates
(Llama 3's, one that trims contents) derive too; one that cannot be expressed (Mistral's, which refuses a
system message) is refused with the reason.
"""

from __future__ import annotations

import jinja2
import pytest

from dyag_core.export import (
    GoTemplateError,
    ModelfileSpec,
    TemplateError,
    derive_ollama_template,
    parse_modelfile,
    render_go_template,
    render_messages,
)
from dyag_core.export.template import SAMPLE_CONVERSATIONS, build_go_template, expected_prompt

SYSTEM = "Tu es un assistant expert en applications du système d'information français."

# --- the evaluator: Go's text/template semantics ------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "data", "expected"),
    [
        ("a {{ .X }} b", {"X": "1"}, "a 1 b"),
        ("a  {{- .X -}}  b", {"X": "1"}, "a1b"),  # trim markers eat all adjacent white space
        ("a\n\n{{- .X }}\n", {"X": "1"}, "a1\n"),
        ('{{ if eq .R "user" }}U{{ else if eq .R "system" }}S{{ else }}O{{ end }}', {"R": "system"}, "S"),
        ('{{ eq .R "a" "b" "c" }}', {"R": "c"}, "true"),  # eq with several right-hand values
        ('{{ and 1 0 2 }}|{{ or 0 "" 3 }}|{{ or 0 "" }}', {}, "0|3|"),  # the deciding argument, not a bool
        ("{{ if and .Missing (index .Missing 0) }}x{{ else }}no{{ end }}", {"Missing": []}, "no"),  # and stops early
        ("{{ range $i, $m := .L }}{{ $i }}={{ $m }};{{ end }}", {"L": ["a", "b"]}, "0=a;1=b;"),
        ("{{ range .L }}{{ . }}{{ else }}empty{{ end }}", {"L": []}, "empty"),
        ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", {}, "2"),  # = assigns the outer variable
        ("{{ len (slice .L 1) }} {{ index .L 2 }} {{ len .S }}", {"L": [1, 2, 3], "S": "héllo"}, "2 3 5"),
        ("{{ range $i, $_ := .L }}{{ if eq (len (slice $.L $i)) 1 }}last{{ end }}{{ end }}", {"L": [1, 2]}, "last"),
        ('{{/* a comment */}}x{{ "{{" }}', {}, "x{{"),
        ("{{ (index .M 0).Role }}", {"M": [{"Role": "user"}]}, "user"),
        ("{{ .Missing }}", {}, "<no value>"),
    ],
)
def test_the_evaluator_follows_go_text_template(template, data, expected):
    assert render_go_template(template, data) == expected


@pytest.mark.parametrize(
    "template",
    ["{{ if .X }}no end", "{{ end }}", '{{ printf "%s" .X }}', "{{ with .X }}{{ end }}", "{{ .X ", "{{ len }}"],
)
def test_the_evaluator_refuses_what_it_does_not_know(template):
    with pytest.raises(GoTemplateError):
        render_go_template(template, {"X": "1"})


# Ollama's template for Llama 3.2 (without tools), as its library publishes it: trim markers everywhere.
OLLAMA_LLAMA3 = """<|start_header_id|>system<|end_header_id|>

{{ if .System }}{{ .System }}{{ end }}<|eot_id|>
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>

{{ .Content }}<|eot_id|>{{ if $last }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- else if eq .Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>

{{ .Content }}{{ if not $last }}<|eot_id|>{{ end }}
{{- end }}
{{- end }}"""


def test_a_real_ollama_template_renders_as_ollama_renders_it():
    text = render_go_template(
        OLLAMA_LLAMA3,
        {
            "System": "Be brief.",
            "Messages": [
                {"Role": "user", "Content": "Hi"},
                {"Role": "assistant", "Content": "Hello"},
                {"Role": "user", "Content": "Bye?"},
            ],
        },
    )
    assert text == (
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nBye?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


# --- the default model: the Modelfile's TEMPLATE renders what the tokenizer renders -------------------


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("transformers")
    from dyag_llm.local import default_model_path, load_tokenizer

    return load_tokenizer(str(default_model_path()))


@pytest.fixture(scope="module")
def derived(tokenizer):
    from dyag_llm.local import render_chat

    specials = [*tokenizer.all_special_tokens, *tokenizer.added_tokens_encoder]
    return derive_ollama_template(
        lambda m, g: render_chat(tokenizer, m, add_generation_prompt=g),
        special_tokens=specials,
        eos_token=tokenizer.eos_token,
    )


CONVERSATIONS = [
    [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Quel est le statut de l'application 6tzen ?"}],
    [{"role": "user", "content": "Sans prompt système : que sais-tu faire ?"}],
    [
        {"role": "system", "content": SYSTEM + "\nTu réponds en une phrase."},
        {"role": "user", "content": "Qu'est-ce que PILOTE-BOP ?"},
        {
            "role": "assistant",
            "content": "PILOTE-BOP est une application de pilotage budgétaire.\nElle est en production.",
        },
        {"role": "user", "content": "Et son domaine ? « Fonctions support » ?"},
        {"role": "assistant", "content": "Oui : Fonctions support."},
        {"role": "user", "content": "Merci ! 😀"},
    ],
]


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=["question", "no-system", "multi-turn"])
def test_the_modelfile_template_renders_the_tokenizers_chat_template(tokenizer, derived, conversation):
    modelfile = ModelfileSpec("model-q8_0.gguf", derived.template, SYSTEM, stop=derived.stop).text()
    template = parse_modelfile(modelfile)["template"]  # what Ollama reads back from the Modelfile
    expected = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    assert render_messages(template, conversation) == expected


def test_the_stop_tokens_and_pieces_come_from_the_tokenizer(derived):
    assert derived.stop == ("<|im_end|>", "<|im_start|>")
    assert derived.user == ("<|im_start|>user\n", "<|im_end|>\n")
    assert derived.generation_prompt == "<|im_start|>assistant\n"
    assert "You are a helpful AI assistant named SmolLM" in derived.start_without_system  # SmolLM2's own default


def test_a_hand_written_template_is_caught(tokenizer):
    """The comparison can fail: a plausible hand-written ChatML TEMPLATE misses SmolLM2's default system prompt."""
    hand_written = (
        "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
    )
    conversation = CONVERSATIONS[1]
    expected = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    assert render_messages(hand_written, conversation) != expected


def test_the_modelfile_reads_back_its_parameters(derived):
    text = ModelfileSpec(
        "model-q8_0.gguf",
        derived.template,
        SYSTEM,
        temperature=0.7,
        top_p=0.9,
        stop=derived.stop,
        adapter_file="adapter-f16.gguf",
    ).text()
    parsed = parse_modelfile(text)
    assert parsed["from"] == "./model-q8_0.gguf" and parsed["adapter"] == "./adapter-f16.gguf"
    assert parsed["parameters"] == {"temperature": 0.7, "top_p": 0.9, "stop": ["<|im_end|>", "<|im_start|>"]}
    assert parsed["system"] == SYSTEM and parsed["template"] == derived.template


# --- other chat templates ---------------------------------------------------------------------------


def _jinja(source: str, **tokens):
    env = jinja2.Environment()

    def raise_exception(message):
        raise jinja2.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    template = env.from_string(source)
    return lambda messages, add_generation_prompt: template.render(
        messages=messages, add_generation_prompt=add_generation_prompt, **tokens
    )


LLAMA3 = (
    "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)
GEMMA = (
    "{{ bos_token }}{% for message in messages %}{% set role = 'model' if "
    "message['role'] == 'assistant' else message['role'] %}{{ '<start_of_turn>' "
    "+ role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif "
    "message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}"
)


@pytest.mark.parametrize(
    ("source", "tokens", "specials", "eos", "stop"),
    [
        (
            LLAMA3,
            {"bos_token": "<|begin_of_text|>"},
            ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"],
            "<|eot_id|>",
            ("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"),
        ),
        (
            GEMMA,
            {"bos_token": "<bos>"},
            ["<bos>", "<start_of_turn>", "<end_of_turn>"],
            "<eos>",
            ("<eos>", "<end_of_turn>", "<start_of_turn>"),
        ),
    ],
    ids=["llama3", "gemma"],
)
def test_other_chat_templates_derive_and_render_the_same(source, tokens, specials, eos, stop):
    render = _jinja(source, **tokens)
    derived = derive_ollama_template(render, special_tokens=specials, eos_token=eos)
    assert derived.stop == stop
    for conversation in [*CONVERSATIONS, *(c for c, _ in SAMPLE_CONVERSATIONS)]:
        # a conversation that ends with the assistant is left open (Ollama continues that answer)
        want = expected_prompt(render, conversation, conversation[-1]["role"] != "assistant", derived.assistant[1])
        assert render_messages(derived.template, conversation) == want


def test_a_template_that_refuses_a_system_message_is_refused_with_the_reason():
    with pytest.raises(TemplateError) as caught:
        derive_ollama_template(_jinja(MISTRAL, bos_token="<s>", eos_token="</s>"))
    assert caught.value.code == "unsupported_chat_template"
    assert "roles must alternate" in caught.value.message


def test_a_template_that_writes_something_the_go_template_cannot_is_refused():
    # The date of the last message in the header: not expressible from the pieces around each message.
    source = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
        "{% if add_generation_prompt %}<assistant n={{ messages | length }}>{% endif %}"
    )
    with pytest.raises(TemplateError) as caught:
        derive_ollama_template(_jinja(source))
    assert "cannot be expressed" in caught.value.message


def test_literal_braces_in_a_chat_template_stay_literal():
    pieces = {
        "start_with_system": "{{SYS}}",
        "start_without_system": "",
        "pre_system": "",
        "post_system": "\n",
        "pre_user": "U:",
        "post_user": "\n",
        "pre_assistant": "A:",
        "post_assistant": "\n",
        "generation_prompt": "A:",
    }
    template = build_go_template(pieces)
    assert (
        render_messages(template, [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}])
        == "{{SYS}}s\nU:q\nA:"
    )
