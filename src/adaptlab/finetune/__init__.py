"""Fine-tuning: new weights (a LoRA adapter) trained on the task's examples."""

from adaptlab.finetune.lora import Lora

__all__ = ["Lora"]
