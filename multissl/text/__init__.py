"""Text adapter: unsup-SimCSE, ESimCSE, WhitenedCSE and MLM pre-training on any Hugging Face encoder,
STS evaluation (STS-B, SentEval STS12-16, SICK-R, `datasets`) and export to transformers /
sentence-transformers folders."""
