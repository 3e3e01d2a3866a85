"""Inference: batch predictions with a logged model (`batch`)."""
