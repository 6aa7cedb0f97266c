"""Chat models for the whole platform, behind one small interface (see base.py)."""

from dyag_llm.base import ChatModel, ChatResult, LLMError, LLMSettings
from dyag_llm.factory import open_chat_model

__all__ = ["ChatModel", "ChatResult", "LLMError", "LLMSettings", "open_chat_model"]
