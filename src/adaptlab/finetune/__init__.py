"""Fine-tuning: new weights (a LoRA adapter, or every weight) trained on the task's examples."""

from adaptlab.finetune.fit import FineTune

__all__ = ["FineTune"]
