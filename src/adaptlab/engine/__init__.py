"""The one place that runs a model: chat prompts to token ids, label scoring, generation."""
