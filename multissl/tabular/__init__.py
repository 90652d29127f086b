"""Tabular adapter: SCARF contrastive pre-training on feature tables (the foundation's reference task)."""
