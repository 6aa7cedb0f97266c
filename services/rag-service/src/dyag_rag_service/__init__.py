"""rag-service: a catalog indexed in ChromaDB, hybrid retrieval and cited answers."""

import os

# Set before torch or chromadb load (any submodule may import them). One OpenMP thread per engine call: the service
# parallelises across texts with its own threads instead; OpenMP's spinning threads on a busy 2-core machine made a
# single question's embedding 5x slower. Chroma's telemetry stays off.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
