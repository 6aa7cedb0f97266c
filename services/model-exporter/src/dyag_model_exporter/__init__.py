"""model-exporter: merged HF folder, GGUF (f16, q8_0, q4_K_M), Ollama Modelfile, parity gate."""
