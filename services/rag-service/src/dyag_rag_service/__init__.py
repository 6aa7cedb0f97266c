"""rag-service: a catalog in ChromaDB, hybrid retrieval and cited answers (the guide's RAG baseline)."""
