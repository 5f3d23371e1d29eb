"""Rebuild this example's slice of Banking77 (CC-BY-4.0, PolyAI) from the full JSONL files.

    python examples/banking-cards/make_slice.py ../shared/data/banking77

Takes the first 20 training and 10 test rows of each intent below, in the source
files' order, and shuffles each split with random.Random(0).
"""

import json
import random
import sys
from pathlib import Path

INTENTS = [
    "activate_my_card",
    "card_about_to_expire",
    "card_acceptance",
    "card_arrival",
    "card_not_working",
    "card_payment_fee_charged",
    "card_swallowed",
    "lost_or_stolen_card",
]
PER_INTENT = {"train": 20, "test": 10}


def main(source: Path, target: Path) -> None:
    for split, n in PER_INTENT.items():
        counts = dict.fromkeys(INTENTS, 0)
        rows = []
        for line in (source / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if counts.get(row["output"], n) < n:
                counts[row["output"]] += 1
                rows.append(row)
        random.Random(0).shuffle(rows)
        with open(target / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).parent)
