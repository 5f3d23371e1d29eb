"""`python -m adaptlab` (what `accelerate launch -m adaptlab finetune ...` runs on each process)."""

from adaptlab.cli import main

main()
