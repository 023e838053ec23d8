"""Bastion: an LLM gateway that reads LiteLLM proxy configs."""

__version__ = "0.1.0"
