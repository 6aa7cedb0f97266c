"""openai-trainer: the guide's step 4 (upload, fine-tuning job, monitoring, smoke test) as a service."""
