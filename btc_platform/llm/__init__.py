"""LLM helpers: the shared action decoder and a tiny offline base model for tests and demos."""
