"""gpu-lora-trainer: LoRA/QLoRA fine-tuning jobs, a model registry, and generation with base model + adapter."""
