"""Rebuild this example (Northwind / Contoso benefits documents, MIT, Microsoft) from the shared copy.

    .venv/bin/python examples/northwind-benefits/make_slice.py [--source ../shared/data/northwind]

Reads `questions.jsonl` (answerable pairs whose truth ends with `[file.pdf#page=N]`) and
`questions_dontknow.jsonl` (questions meant to be unanswerable), copies the six PDFs into
docs/, and writes train.jsonl and test.jsonl beside this file:

    {"input": question, "output": answer without its citations, "sources": ["file.pdf#page=N", ...]}
    {"input": question, "output": null}          # the documents do not answer it

The don't-know questions were read one by one and checked against the PDFs' text (pypdf,
page by page); DONTKNOW below records each decision. "answered" ones are dropped.
Split, all with random.Random(0): 30 answerable and 10 unanswerable rows (5 on-topic,
5 off-topic) go to test, the rest to train; each file is then shuffled.
"""

import argparse
import json
import random
import re
import shutil
import string
from pathlib import Path

from pypdf import PdfReader

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path(__file__).resolve().parents[3] / "shared/data/northwind"
PDFS = (
    "Benefit_Options.pdf",
    "Northwind_Health_Plus_Benefits_Details.pdf",
    "Northwind_Standard_Benefits_Details.pdf",
    "PerksPlus.pdf",
    "employee_handbook.pdf",
    "role_library.pdf",
)
TEST_ANSWERABLE = 30
TEST_UNANSWERABLE = {"unanswerable": 5, "off_topic": 5}
CITATION = re.compile(r"\[([^\[\]]+?\.pdf)#page=(\d+)\]")

HP = "Northwind_Health_Plus_Benefits_Details.pdf"
STD = "Northwind_Standard_Benefits_Details.pdf"
TRIVIA = "general-knowledge trivia; the documents do not say"
NONSENSE = "nonsensical question; the documents do not say"

# Every question of questions_dontknow.jsonl: (category, reason).
#   unanswerable: on-topic, the documents do not answer it          -> kept, output null
#   answered:     the documents answer it (page given)               -> dropped
#   off_topic:    unrelated to the company; the documents do not say -> kept, output null
DONTKNOW = {
    "What are the key benefits of the Northwind Platinum plan?": (
        "unanswerable",
        "no Platinum plan exists; only Health Plus and Standard are offered (Benefit_Options.pdf#page=3)",
    ),
    "How does the Northwind Health Plus work in California?": (
        "unanswerable",
        f"nothing state-specific; California is only named for external appeals ({HP}#page=84-85) "
        "and legal venue (#page=104)",
    ),
    "Should employees stay home when sick?": ("unanswerable", "no sick-leave or attendance policy in the handbook"),
    "Can standing desks be reimbursed?": (
        "unanswerable",
        "desks are not mentioned; PerksPlus lists fitness equipment and excludes non-fitness "
        "expenses (PerksPlus.pdf#page=3)",
    ),
    "Can deductibles be paid by check?": ("unanswerable", "payment methods for deductibles are not described"),
    "How does the Northwind Standard plan handle postnatal yoga?": (
        "unanswerable",
        "the Standard plan never mentions yoga (only PerksPlus lists yoga classes)",
    ),
    "Are domestic partners eligible for the Northwind Health Plus plan?": (
        "unanswerable",
        "domestic partners are not mentioned; eligibility rules are not given",
    ),
    "Are teenage children covered under the insurance?": (
        "unanswerable",
        f"dependents are mentioned ({STD}#page=89) but no age rules for children",
    ),
    "What is the process for submitting a claim requiring evidence of medical necessity to Northwind Health?": (
        "answered",
        f"{HP}#page=92-93 (evidence of medical necessity), {STD}#page=88",
    ),
    "What is the role of the Manager of Technical Product Marketing at Contoso Electronics?": (
        "unanswerable",
        "no such role in role_library.pdf or the handbook's role list",
    ),
    "What is the process for obtaining prior authorization for services under the Northwind Health Plus plan?": (
        "answered",
        f"{HP}#page=63-67 (prior authorization)",
    ),
    "What is the policy for working from home?": ("unanswerable", "no remote-work policy in the handbook"),
    "How can employees refer new hires?": ("unanswerable", "no referral programme in the documents"),
    "What are the benefits of choosing an in-network provider with Northwind Standard?": (
        "answered",
        f"{STD}#page=4-5 (in-network providers)",
    ),
    "How does Northwind Health Plus handle Coordination of Benefits (COB)?": (
        "answered",
        f"{HP}#page=77-81 (coordination of benefits)",
    ),
    "What is the role of the clinical review process in the Northwind Health Plus plan?": (
        "answered",
        f"{HP}#page=72 (clinical review)",
    ),
    "What are the requirements for data security at Contoso Electronics?": (
        "answered",
        "employee_handbook.pdf#page=9-10 (data security policies)",
    ),
    "What is the role of Contoso Electronics in the aerospace industry?": (
        "answered",
        "employee_handbook.pdf#page=3 (electronic components for commercial and military aircraft)",
    ),
    "Is there a plan with no deductible?": (
        "answered",
        f"both plans have one: Health Plus $1,500/$3,000 in-network ({HP}#page=13), Standard "
        f"$2,000/$4,000 ({STD}#page=13); some services are exempt",
    ),
    "What are the cost implications of choosing an out-of-network provider under Northwind Health Plus?": (
        "answered",
        f"{HP}#page=4-7 (non-participating providers, higher costs, balance billing)",
    ),
    "What is the policy for coverage of rehabilitation services under Northwind Health Plus?": (
        "answered",
        f"{HP}#page=50 (rehabilitation therapy)",
    ),
    "What is the role of Northwind Standard in relation to in-network and non-participating providers?": (
        "answered",
        f"{STD}#page=4-6 (in-network and non-participating providers)",
    ),
    "What is the coverage for mental health and substance abuse treatments under the Northwind Health Plus plan?": (
        "answered",
        f"{HP}#page=3 (same as medical/surgical coverage), copays #page=11; Benefit_Options.pdf#page=3",
    ),
    "What is the process for obtaining prior authorization for a medical service or treatment under "
    "Northwind Health Plus?": (
        "answered",
        f"{HP}#page=63-67 (prior authorization)",
    ),
    "What is the capital of France?": ("off_topic", TRIVIA),
    'Who wrote the novel "Pride and Prejudice"?': ("off_topic", TRIVIA),
    "What is the chemical symbol for gold?": ("off_topic", TRIVIA),
    "What is the tallest mountain in the world?": ("off_topic", TRIVIA),
    "Who painted the Mona Lisa?": ("off_topic", TRIVIA),
    "What is the largest planet in our solar system?": ("off_topic", TRIVIA),
    "What is the square root of 81?": ("off_topic", TRIVIA),
    "Who was the first person to walk on the moon?": ("off_topic", TRIVIA),
    "What is the freezing point of water in Fahrenheit?": ("off_topic", TRIVIA),
    "What is the main ingredient in hummus?": ("off_topic", TRIVIA),
    "Who won the FIFA World Cup in 2018?": ("off_topic", TRIVIA),
    "What is the currency of Japan?": ("off_topic", TRIVIA),
    "How many miles does a rainbow weigh?": ("off_topic", NONSENSE),
    "Can you smell the color of the wind?": ("off_topic", NONSENSE),
    "What time does the color blue go to sleep?": ("off_topic", NONSENSE),
    "How many square feet are in a thought?": ("off_topic", NONSENSE),
    "Can you taste the sound of a sunrise?": ("off_topic", NONSENSE),
    "How loud is the smell of a rose?": ("off_topic", NONSENSE),
    "What's the temperature of a dream?": ("off_topic", NONSENSE),
    "How many inches tall is a whisper?": ("off_topic", NONSENSE),
    "What flavor is the number seven?": ("off_topic", NONSENSE),
}


def norm(text: str) -> str:
    """Lower-cased, punctuation removed, whitespace collapsed: the near-duplicate key."""
    return " ".join(text.lower().translate(str.maketrans("", "", string.punctuation)).split())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def answerable_row(record: dict, page_counts: dict[str, int]) -> dict:
    truth = record["truth"]
    sources = []
    for name, page in CITATION.findall(truth):
        if name not in page_counts or not 1 <= int(page) <= page_counts[name]:
            raise SystemExit(f"bad citation {name}#page={page} in {record['question']!r}")
        if f"{name}#page={page}" not in sources:
            sources.append(f"{name}#page={page}")
    if not sources:
        raise SystemExit(f"no citation in {record['question']!r}")
    output = " ".join(CITATION.sub(" ", truth).split())
    output = re.sub(r"\s+([.,;:!?])", r"\1", output)
    if "[" in output or ".pdf" in output:
        raise SystemExit(f"citation left in {record['question']!r}: {output!r}")
    return {"input": " ".join(record["question"].split()), "output": output, "sources": sources}


def main(source: Path, target: Path) -> None:
    # documents: copied byte for byte, page counts for checking citations
    (target / "docs").mkdir(parents=True, exist_ok=True)
    page_counts = {}
    for name in PDFS:
        shutil.copyfile(source / "docs" / name, target / "docs" / name)
        page_counts[name] = len(PdfReader(target / "docs" / name).pages)
    print("pages:", page_counts, "total", sum(page_counts.values()))

    # answerable questions: exact duplicates (same question text) keep their first copy
    raw = read_jsonl(source / "questions.jsonl")
    seen, answerable, dropped = set(), [], []
    for record in raw:
        key = norm(record["question"])
        if key in seen:
            dropped.append(record["question"])
            continue
        seen.add(key)
        answerable.append(answerable_row(record, page_counts))
    print(f"questions.jsonl: {len(raw)} rows, {len(dropped)} duplicate questions dropped {dropped}")

    # don't-know questions: every one must have a reviewed decision
    dontknow = read_jsonl(source / "questions_dontknow.jsonl")
    questions = [d["question"] for d in dontknow]
    missing = [q for q in questions if q not in DONTKNOW]
    stale = [q for q in DONTKNOW if q not in questions]
    if missing or stale:
        raise SystemExit(f"DONTKNOW out of date: missing {missing}, not in the file {stale}")
    by_category = {c: [q for q in questions if DONTKNOW[q][0] == c] for c in ("unanswerable", "answered", "off_topic")}
    print(
        "questions_dontknow.jsonl:",
        len(questions),
        "rows;",
        {c: len(qs) for c, qs in by_category.items()},
        "(answered: dropped)",
    )
    clash = [q for q in questions if norm(q) in seen and DONTKNOW[q][0] != "answered"]
    if clash:
        raise SystemExit(f"kept as unanswerable but also in questions.jsonl: {clash}")

    # split
    rng = random.Random(0)
    test_idx = set(rng.sample(range(len(answerable)), TEST_ANSWERABLE))
    test = [row for i, row in enumerate(answerable) if i in test_idx]
    train = [row for i, row in enumerate(answerable) if i not in test_idx]
    for category, n in TEST_UNANSWERABLE.items():
        pool = by_category[category]
        chosen = set(rng.sample(pool, n))
        test += [{"input": q, "output": None} for q in pool if q in chosen]
        train += [{"input": q, "output": None} for q in pool if q not in chosen]
    random.Random(0).shuffle(train)
    random.Random(0).shuffle(test)

    # no question in both files, not even after lower-casing and removing punctuation
    train_keys = {norm(r["input"]) for r in train}
    overlap = [r["input"] for r in test if norm(r["input"]) in train_keys]
    if overlap or len(train_keys) != len(train) or len({norm(r["input"]) for r in test}) != len(test):
        raise SystemExit(f"duplicate questions across or within splits: {overlap}")

    for name, rows in (("train", train), ("test", test)):
        with open(target / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        n_null = sum(r["output"] is None for r in rows)
        print(f"{name}.jsonl: {len(rows)} rows = {len(rows) - n_null} answerable + {n_null} unanswerable")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE, help=f"the shared northwind folder (default {DEFAULT_SOURCE})"
    )
    main(parser.parse_args().source.resolve(), HERE)
