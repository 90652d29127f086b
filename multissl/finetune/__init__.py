"""Contrastive fine-tuning of any Hugging Face model on the user's own pairs, triplets or labels."""
