"""Cut this example's slice from sgd-banks (Schema-Guided Dialogue, CC BY-SA 4.0): whole conversations, never turns.

    python examples/bank-assistant/make_slice.py ../shared/data/sgd-banks

The conversations' ids are shuffled with random.Random(0); the first TRAIN go to
train.jsonl, the next TEST to test.jsonl, each line copied unchanged (id, messages,
intents), so no turn of a test conversation is in train.
"""

import json
import random
import sys
from pathlib import Path

TRAIN, TEST = 40, 10


def main(source: Path) -> None:
    lines = (source / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
    order = sorted(lines, key=lambda line: json.loads(line)["id"])
    random.Random(0).shuffle(order)
    here = Path(__file__).parent
    (here / "train.jsonl").write_text("\n".join(order[:TRAIN]) + "\n", encoding="utf-8")
    (here / "test.jsonl").write_text("\n".join(order[TRAIN : TRAIN + TEST]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
