"""Encoders shared by several adapters (Hugging Face towers for text, code and vision-language)."""
