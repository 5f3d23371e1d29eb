"""Compose this example's text-to-SQL slice from Restaurant-8k (CC-BY-4.0, PolyAI) JSONL files.

    python examples/booking-sql/make_slice.py ../shared/data/restaurant8k

Each row's input is a numbered batch of customer messages (the `User:` texts of
Restaurant-8k rows with at least one slot, in the JSONL files' order, each used once);
its output is one INSERT statement with a tuple per message holding the annotated slot
values verbatim (NULL where a slot is absent). Train rows come only from train.jsonl,
test rows only from test.jsonl. The batch size is drawn from 2..8 with
random.Random(0) (one per split), then grown while the answer is under MIN_TOKENS or
shrunk while it is over MAX_TOKENS tokens of the embedded model's tokenizer.
"""

import json
import random
import statistics
import sys
from pathlib import Path

from transformers import AutoTokenizer

from adaptlab.models.embedded import cached_gguf_folder, embedded_gguf

ROWS = {"train": 80, "test": 30}
SLOTS = ["date", "time", "people", "first_name", "last_name"]
BATCH = (2, 8)
MIN_TOKENS, MAX_TOKENS = 50, 200
HEADER = f"INSERT INTO bookings (msg, {', '.join(SLOTS)}) VALUES"


def sql_value(value):
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def make_row(messages):
    """messages: [(text, slots)] -> {"input", "output"}."""
    lines = [f"{i}. {text}" for i, (text, _) in enumerate(messages, 1)]
    tuples = [
        f"  ({i}, " + ", ".join(sql_value(slots.get(s)) for s in SLOTS) + ")"
        for i, (_, slots) in enumerate(messages, 1)
    ]
    return {"input": "\n".join(lines), "output": HEADER + "\n" + ",\n".join(tuples) + ";"}


def read_messages(path: Path):
    """(user text, slots) of each source row with at least one slot, in file order."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        slots = json.loads(row["output"])
        if slots:
            context, user = row["input"].split("\n", 1)
            assert context.startswith("Assistant requested: ") and user.startswith("User: "), row
            out.append((user[len("User: ") :], slots))
    return out


def main(source: Path, target: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(cached_gguf_folder(embedded_gguf()))

    def tokens(text):
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    for split, n_rows in ROWS.items():
        messages = read_messages(source / f"{split}.jsonl")
        rng = random.Random(0)
        rows, pos = [], 0
        while len(rows) < n_rows:
            n = rng.randint(*BATCH)
            while tokens(make_row(messages[pos : pos + n])["output"]) < MIN_TOKENS:
                n += 1
            while tokens(make_row(messages[pos : pos + n])["output"]) > MAX_TOKENS:
                n -= 1
            row = make_row(messages[pos : pos + n])
            assert MIN_TOKENS <= tokens(row["output"]) <= MAX_TOKENS and pos + n <= len(messages)
            rows.append(row)
            pos += n
        with open(target / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        counts = [tokens(r["output"]) for r in rows]
        sizes = [r["input"].count("\n") + 1 for r in rows]
        print(
            f"{split}: {len(rows)} rows, {pos} messages, {min(sizes)}-{max(sizes)} per row; "
            f"answer tokens min {min(counts)} median {statistics.median(counts)} max {max(counts)}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).parent)
