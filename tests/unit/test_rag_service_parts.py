"""rag-service parts that need no store: the embedder, its cache, the dense text, re-ranking's absence, settings."""

from __future__ import annotations

import numpy as np
import pytest

from dyag_rag_service.embeddings import DyagEmbeddingFunction, EmbeddingCache, dense_text, open_cache, open_embedder
from dyag_rag_service.rerank import load_reranker
from dyag_rag_service.settings import RagSettings


def test_the_e5_embedder_ships_in_its_wheel_and_ranks_french_sensibly():
    model = open_embedder("e5")
    passages = model.passages([
        "GEOVAL (Gestion des valorisations géographiques) — identité : Statut : En production",
        "HYDROSCOPE (Observatoire national des débits des cours d'eau) — identité : Statut : En production",
        "EOLIA (Instruction des projets éoliens terrestres) — description : instruction des parcs éoliens",
    ])
    assert passages.shape == (3, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    query = model.query("Quelle application suit le débit des rivières ?")
    assert int(np.argmax(passages @ query)) == 1
    # Split across the engine's worker handles, the vectors are the ones computed one by one.
    one_by_one = np.vstack([model.passages([t]) for t in ("a b c", "GEOVAL", "éoliennes")])
    assert np.allclose(model.passages(["a b c", "GEOVAL", "éoliennes"]), one_by_one, atol=1e-5)


def test_the_embedding_cache_round_trips(tmp_path):
    cache = open_cache("", tmp_path)
    assert isinstance(cache, EmbeddingCache) and (tmp_path / "embeddings.sqlite").exists()
    key = EmbeddingCache.key("model", "texte")
    cache.put_many({key: np.arange(4, dtype=np.float32)})
    assert np.array_equal(open_cache(str(tmp_path / "embeddings.sqlite"), tmp_path).get_many([key, "absent"])[key], np.arange(4))
    assert open_cache("off", tmp_path) is None


def test_dense_text_is_the_start_of_a_chunk_cut_at_a_word():
    assert dense_text("court", 200) == "court"
    cut = dense_text("mot " * 100, 50)
    assert len(cut) <= 50 and cut.endswith("mot")


def test_chroma_gets_an_explicit_embedding_function():
    ef = DyagEmbeddingFunction("e5", 200)
    assert ef.name() == "dyag" and ef.default_space() == "cosine" and not ef.is_legacy()
    assert DyagEmbeddingFunction.build_from_config(ef.get_config()).get_config() == {"embedder": "e5", "max_chars": 200}
    with pytest.raises(ValueError):
        ef.validate_config_update({"embedder": "e5"}, {"embedder": "use"})


def test_re_ranking_is_skipped_cleanly_without_a_model(tmp_path):
    assert load_reranker("") is None
    assert load_reranker(str(tmp_path / "no-such-model")) is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    assert load_reranker(str(tmp_path / "broken")) is None  # unreadable: logged, skipped


def test_settings_read_the_compose_names(monkeypatch):
    monkeypatch.setenv("CHROMA_URL", "http://chroma:8000")
    monkeypatch.setenv("DYAG_RAG_DENSE_MAX_CHARS", "120")
    settings = RagSettings()
    assert settings.chroma_url == "http://chroma:8000" and settings.rag_dense_max_chars == 120
    assert settings.service_name == "rag-service" and settings.port() == 50056
