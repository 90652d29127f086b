"""Biosignal adapter: participant-level contrastive pre-training of PPG / ECG encoders
(Abbaspourazad et al., "Large-scale Training of Foundation Models for Wearable Biosignals", ICLR 2024)."""
