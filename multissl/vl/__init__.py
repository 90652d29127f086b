"""Vision-language adapter: CLIP-style ITC, ALBEF and TCL image-text pre-training with retrieval evaluation."""
