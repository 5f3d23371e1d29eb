"""Measures for knowledge (question-answering) tasks, without a judge model: abstentions, figures an answer
invents, ROUGE-L, and how well retrieval found and the answer cited the sources; per row, then aggregated.

Every rule here is a string rule, so it is cheap, repeatable and wrong in known ways (each docstring says
where). `qa_rows` computes the per-row values once; `qa_aggregate` only re-aggregates them, so a
bootstrap resample costs a few numpy means.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from decimal import Decimal
from functools import lru_cache

import numpy as np

from adaptlab.task import DEFAULT_ABSTAIN  # noqa: F401  (its doctests and callers read it here)

# An answer opens with a refusal when one of these (matched as whole words on the plain text:
# lower case, contractions spelt out, punctuation dropped) is in its first sentence.
REFUSALS = (
    r"i do not know",
    r"not (sure|certain)",
    r"(cannot|could not|unable to) (find|answer|determine|tell|say)",
    r"(no|not enough) information",
    r"i do not have",  # "I don't have that information"
    r"(do|does|did) not (say|mention|specify|state)",
    r"(documents?|passages?|context|sources?|handbook|texts?) (do|does) not (cover|include|contain|address)",
    r"not (mentioned|specified|stated)",
)
ABSTAIN_MAX_WORDS = 30  # a longer answer is an answer, whatever it opens with
PIVOTS = ("but", "however", "although", "though")  # "I'm not sure, but I think ..." goes on to answer
# "..., but ask HR" still declines
REFERRALS = r"\b(ask|contact|check|call|consult|reach out|refer to|speak (to|with)|talk to)\b"

_CONTRACTIONS = (
    (r"\bcan'?t\b|\bcan not\b", "cannot"),
    (r"\bwon'?t\b", "will not"),
    (r"\b(do|does|did|is|are|was|were|has|have|could|would)n'?t\b", r"\1 not"),
    (r"\bi'm\b", "i am"),
)
# Clauses end at sentence ends, , ; : (followed by a space, so "1,500.00" stays whole), and before a pivot word.
_BREAK = re.compile(r"[.!?]+(?=\s|$)|\n+|[,;:](?=\s|$)|\s+(?=(?:" + "|".join(PIVOTS) + r")\b)", re.IGNORECASE)


def _plain(text: str) -> str:
    """Lower case, contractions spelt out, punctuation dropped: "I Don’t know!" -> "i do not know"."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    for pattern, full in _CONTRACTIONS:
        text = re.sub(pattern, full, text)
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def _clauses(text: str) -> list[tuple[str, bool]]:
    """(clause, whether a sentence ends after it), empty clauses dropped."""
    out, pos = [], 0
    for m in _BREAK.finditer(text):
        out.append((text[pos : m.start()], bool(re.match(r"[.!?\n]", m.group()))))
        pos = m.end()
    out.append((text[pos:], True))
    kept: list[tuple[str, bool]] = []
    for clause, ends in out:
        if clause.strip():
            kept.append((clause, ends))
        elif ends and kept:
            kept[-1] = (kept[-1][0], True)
    return kept


@lru_cache(maxsize=8)
def _refusals(abstain: str) -> re.Pattern:
    """REFUSALS and the task's own abstain answer (plain), as one whole-word pattern."""
    return re.compile(r"\b(?:" + "|".join(REFUSALS + ((re.escape(abstain),) if abstain else ())) + r")\b")


def token_f1(hypothesis: str, reference: str) -> float:
    """SQuAD-style token overlap F1 (0-1) on lower-cased whitespace tokens."""
    hyp, ref = hypothesis.lower().split(), reference.lower().split()
    if not hyp or not ref:
        return float(hyp == ref)
    overlap = sum((Counter(hyp) & Counter(ref)).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / len(hyp), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def is_abstention(text: str, abstain: str) -> bool:
    """The answer declines: it is the task's `abstain` answer, or it opens with a refusal and says nothing more.

    Rule: (1) `text` equals `abstain` ignoring case, punctuation and contractions, or is empty; or (2) a
    REFUSALS phrase (or the abstain answer) is in the first sentence with no figure before it, the answer has
    at most ABSTAIN_MAX_WORDS words, and no later clause goes on to answer, i.e. holds a figure or turns with
    "but"/"however"/"although"/"though", unless that clause is itself a refusal or a referral ("ask HR").
    The refusal's own clause may hold a figure ("I don't know the 2025 deductible" restates the question).
    Known limit: a refusal followed by a claim without figures ("I'm not sure. Dental is covered.") counts
    as an abstention.

    >>> is_abstention("I don't know.", DEFAULT_ABSTAIN), is_abstention("The documents do not say.", DEFAULT_ABSTAIN)
    (True, True)
    >>> is_abstention("I'm not sure, but I think the copay is $20.", DEFAULT_ABSTAIN)
    False
    >>> is_abstention("The deductible is $500; I don't know about next year.", DEFAULT_ABSTAIN)
    False
    """
    plain, refusal = _plain(text), _plain(abstain)
    if plain == refusal or not text.strip():  # an empty answer claims nothing
        return True
    if len(text.split()) > ABSTAIN_MAX_WORDS:
        return False
    refuses = _refusals(refusal)
    clauses = _clauses(text)
    for i, (clause, ends) in enumerate(clauses):  # noqa: B007 (i is read after the loop)
        if refuses.search(_plain(clause)):
            break
        if figures(clause) or ends:  # facts first, or the first sentence is over: an answer
            return False
    else:
        return False
    for clause, _ in clauses[i + 1 :]:
        words = _plain(clause)
        if refuses.search(words) or re.search(REFERRALS, words):
            continue
        if figures(clause) or words.split(" ", 1)[0] in PIVOTS:
            return False
    return True


_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DATES = (  # (pattern, which groups hold year, month, day); tried in this order, each match blanked before the next
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), (1, 2, 3)),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b"), (3, 1, 2)),  # month first (US), unless the month is over 12
    (re.compile(rf"\b{_MONTH}\s+{_DAY}(?:,?\s+(\d{{4}}))?\b", re.IGNORECASE), (3, 1, 2)),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+(\d{{4}}))?\b", re.IGNORECASE), (3, 2, 1)),
    (re.compile(rf"\b{_MONTH}\s+(\d{{4}})\b", re.IGNORECASE), (2, 1, None)),
)
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?:\s*([ap])\.?m\b\.?)?", re.IGNORECASE)
_NOT_FIGURES = re.compile(
    r"\[[^\s\]]+\]|\[\s*\d+(?:\s*,\s*\d+)*\s*\]"  # passage labels: [1], [hb.pdf#page=3], [1, 2]
    r"|[\w./-]+\.(?:pdf|md|txt|html?|jsonl)(?:#page=\d+)?|#page=\d+"  # source names
    r"|\b(?:pages?|pp?\.)\s*\d+(?:\s*[-\u2013]\s*\d+)?"  # "page 12", "pp. 3-4"
    r"|^[ \t]*\d{1,2}[.)][ \t]+(?=\S)",  # a list marker at a line's start: "1. ", "2) "
    re.IGNORECASE | re.MULTILINE,
)
_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:(?:st|nd|rd|th)|\s*(thousand|million|billion)|(k))?(?!\w)",
    re.IGNORECASE,
)
_SCALE = {"thousand": 1000, "million": 10**6, "billion": 10**9, "k": 1000}


def _date(year: str | None, month: str, day: str | None) -> str | None:
    """ISO form of a date ("2024-03-03"), a month ("2024-03") or a yearless day ("--03-03"); None if impossible."""
    m = _MONTHS[month[:3].lower()] if month[:1].isalpha() else int(month)
    d = int(day) if day else None
    y = (2000 + int(year) if len(year) == 2 else int(year)) if year else None
    if d is not None and m > 12 and d <= 12:  # 25/12/2024: day first after all
        m, d = d, m
    try:
        date(y or 2000, m, d or 1)  # 2000 is a leap year, so "February 29" passes without a year
    except ValueError:
        return None
    if d is None:
        return f"{y:04d}-{m:02d}"
    return f"{y:04d}-{m:02d}-{d:02d}" if y else f"--{m:02d}-{d:02d}"


def figures(text: str) -> set[str]:
    """The specifics a text states, normalised so one figure written two ways is one string.

    Numbers, money and percentages become the plain number ("$1,500.00", "1500", "1.5 thousand" -> "1500";
    "20%", "20 percent" -> "20"; "3rd" -> "3"); dates become ISO ("March 3, 2024", "3 March 2024",
    "2024-03-03", "3/3/2024" -> "2024-03-03"; "March 2024" -> "2024-03"; "March 3" -> "--03-03"); slashed
    dates read month first, unless the first number cannot be a month; times become 24-hour ("5:30 pm" ->
    "17:30"). Not figures: list markers at a line's start ("1. "), passage labels and source names
    ("[1]", "[hb.pdf#page=3]"), page references ("page 12"). Number words ("thirty") are out of scope.

    >>> sorted(figures("A $1,500.00 deductible, then 20% coinsurance from March 3, 2024."))
    ['1500', '20', '2024-03-03']
    >>> figures("1. Copay: $25 [hb.pdf#page=3]") == figures("$25.00") == {"25"}
    True
    """
    found: set[str] = set()
    text = _NOT_FIGURES.sub(" ", text)
    for pattern, (y, m, d) in _DATES:
        kept, pos = [], 0
        for match in pattern.finditer(text):
            value = _date(match.group(y), match.group(m), match.group(d) if d else None)
            if value is not None:  # an impossible date ("2/30/2024") stays, to be read as numbers
                found.add(value)
                kept.append(text[pos : match.start()] + " ")
                pos = match.end()
        text = "".join(kept) + text[pos:]

    def clock(match: re.Match) -> str:
        hour, minute, half = int(match.group(1)), match.group(2), (match.group(3) or "").lower()
        hour = hour % 12 + (12 if half == "p" else 0) if half else hour
        found.add(f"{hour:02d}:{minute}")
        return " "

    text = _TIME.sub(clock, text)
    for whole, fraction, word, k in _NUMBER.findall(text):
        number = Decimal(whole.replace(",", "") + fraction) * _SCALE.get((word or k).lower(), 1)
        found.add(format(number.normalize(), "f"))
    return found


def is_stale(answer: str, old: str, new: str) -> bool:
    """Whether `answer` still gives the fact a document update replaced: the old answer `old`, the new `new`.

    The old fact is the figures `old` states and `new` does not (`figures`: "$2,000" and "2000" are one); the
    answer is stale when it states any of them. Where the change is not a figure (a renamed benefit), it is the
    words of `old` that `new` lacks, and the answer is stale when it holds all of them. Wrong in known ways: an
    answer quoting the old figure to say it changed counts as stale; a paraphrased old name does not.

    >>> is_stale("Your deductible is $2,000 a year.", "The deductible is $2,000.", "The deductible is $2,500.")
    True
    >>> is_stale("It is 2,500 dollars.", "The deductible is $2,000.", "The deductible is $2,500.")
    False
    >>> is_stale("Use the Club Access card.", "It is called Club Access.", "It is called Wellness Pass.")
    True
    """
    gone = figures(old) - figures(new)
    if gone:
        return bool(figures(answer) & gone)
    words = lambda text: set(re.findall(r"[a-z0-9]+", _plain(text)))  # noqa: E731
    gone_words = words(old) - words(new)
    return bool(gone_words) and gone_words <= words(answer)


def unsupported_figures(answer: str, given: list[str], reference: str) -> list[str]:
    """The figures in `answer` that neither the passages it was given nor the reference state, sorted.

    A full date in a source also supports its month, its year and its yearless day ("January 1, 2025"
    supports "January 1"). Known limit: a figure the answer works out (two $40 copays: "$80") is flagged.

    >>> unsupported_figures("The copay is $25, or $30 after May 1.", ["Copay: $25.00 from May 1, 2025."], "$25")
    ['30']
    """
    supported = set()
    for text in [*given, reference]:
        for figure in figures(text):
            supported.add(figure)
            if re.fullmatch(r"\d{4}-\d\d(-\d\d)?", figure):
                supported |= {figure[:4], figure[:7], "--" + figure[5:]}
    return sorted(figures(answer) - supported)


class _Words:
    """The rouge-score default tokenizer's tokens on ASCII text (lower case, letters and digits, Porter stem
    over 3 characters), but keeping non-ASCII letters, which the default drops ("prämie" is not "pr mie")."""

    def __init__(self):
        from nltk.stem import porter  # nltk comes with rouge-score, whose default tokenizer stems with it

        self.stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        return [self.stemmer.stem(w) if len(w) > 3 and w.isascii() else w for w in re.findall(r"[^\W_]+", text.lower())]


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer  # imports nltk (~1 s): only when ROUGE is asked for

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Words())


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F-measure (0-1): longest common subsequence of stemmed words, by Google's rouge-score.

    >>> round(rouge_l("the plan pays 80 percent", "the plan pays eighty percent"), 2)
    0.8
    """
    return float(_rouge().score(reference, hypothesis)["rougeL"].fmeasure)


def _same_source(gold: str, source: str) -> bool:
    return source == gold or ("#page=" not in gold and source.split("#page=")[0] == gold)


def retrieval_scores(gold: list[str], retrieved: list[str]) -> tuple[float, float]:
    """(recall@k, reciprocal rank) of the gold sources among `retrieved` (best first); (nan, nan) without gold.

    A gold source with a page ("hb.pdf#page=3") matches that page only; without ("faq.md") any page of it.

    >>> retrieval_scores(["hb.pdf#page=3", "faq.md"], ["plan.pdf#page=1", "faq.md", "hb.pdf#page=2"])
    (0.5, 0.5)
    """
    gold = list(dict.fromkeys(gold))
    if not gold:
        return float("nan"), float("nan")
    found = sum(any(_same_source(g, s) for s in retrieved) for g in gold)
    rank = next((i for i, s in enumerate(retrieved, 1) if any(_same_source(g, s) for g in gold)), None)
    return found / len(gold), 1 / rank if rank else 0.0


def cites(answer: str, retrieved: list[str]) -> bool:
    """The answer names a retrieved source: its label in brackets, as the prompt shows it ("[hb.pdf#page=3]",
    or "[hb.pdf]" for any page), or its document's file name ("hb.pdf"). An id without an extension (a JSONL
    row's) counts only in brackets, so "42" in "$42" is no citation.

    >>> cited = cites("The copay is $25 [hb.pdf#page=3].", ["hb.pdf#page=3"])
    >>> cited, cites("See hb.pdf.", ["hb.pdf#page=9"]), cites("$42", ["42"])
    (True, True, False)
    """
    text = answer.lower()
    for source in retrieved:
        doc = source.split("#page=")[0].lower()
        name = doc.rsplit("/", 1)[-1]
        if re.search(rf"\[\s*{re.escape(doc)}(#page=\d+)?\s*\]", text):
            return True
        if "." in name and re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text):
            return True
    return False


def qa_rows(
    expected: list[str],
    predicted: list[str],
    abstain: str,
    given: list[list[str]] | None = None,
    similarity: np.ndarray | None = None,
    gold: list[list[str]] | None = None,
    retrieved: list[list[str]] | None = None,
) -> dict[str, np.ndarray]:
    """Per-row values every QA metric is built from (1.0/0.0 flags), so bootstrap resamples only re-aggregate.

    answerable (the reference is not an abstention), abstained, answered; token_f1, rouge_l and (when given)
    similarity, each 0 where it abstained; unsupported (an answer that states a figure `unsupported_figures`
    finds; without `given`, only the reference supports); qa_score (token F1 on answerable rows, 1/0 for
    abstaining on unanswerable ones). With `retrieved`: has_retrieval, cites; with `gold` too: has_gold,
    recall_at_k, reciprocal_rank (nan where the row has no gold source).
    """
    n = len(expected)
    passages = given if given is not None else [[] for _ in range(n)]
    answerable = np.array([not is_abstention(e, abstain) for e in expected], dtype=float)
    abstained = np.array([is_abstention(p, abstain) for p in predicted], dtype=float)
    if len(abstained) != n:
        raise ValueError(f"qa_rows: {n} references but {len(abstained)} answers")
    kept = 1.0 - abstained
    f1 = np.array([token_f1(p, e) for e, p in zip(expected, predicted)]) * kept
    rows = {"answerable": answerable, "abstained": abstained, "answered": kept, "token_f1": f1}
    rows["rouge_l"] = np.array([rouge_l(p, e) for e, p in zip(expected, predicted)]) * kept
    if similarity is not None:
        rows["similarity"] = np.asarray(similarity, dtype=float) * kept
    rows["unsupported"] = (
        np.array(
            [float(bool(unsupported_figures(p, g, e))) for e, p, g in zip(expected, predicted, passages, strict=True)]
        )
        * kept
    )
    rows["qa_score"] = np.where(answerable == 1, f1, abstained)
    if retrieved is not None:
        rows["has_retrieval"] = np.array([float(bool(r)) for r in retrieved])
        rows["cites"] = np.array([float(cites(p, r)) for p, r in zip(predicted, retrieved, strict=True)])
        if gold is not None:
            scores = np.array(
                [retrieval_scores(g, r) for g, r in zip(gold, retrieved, strict=True)], dtype=float
            ).reshape(n, 2)
            rows |= {
                "has_gold": np.array([float(bool(g)) for g in gold]),
                "recall_at_k": scores[:, 0],
                "reciprocal_rank": scores[:, 1],
            }
    return rows


def _mean(values: np.ndarray, where: np.ndarray) -> float:
    return float(values[where].mean()) if where.any() else float("nan")


def qa_aggregate(rows: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, float]:
    """The scalar QA metrics over the rows `idx` (a bootstrap resample, or every row).

    qa_score (mean of all rows); token_f1, rouge_l, similarity, false_abstention_rate (over answerable rows);
    abstention_rate, hallucination_rate (abstained, answered share of unanswerable rows); unsupported_figures
    (share of answered rows); recall_at_k, mrr (rows with gold sources); citing (answered rows with retrieval).
    Which keys appear depends only on the full table, never on `idx` or on the answers, so every strategy on
    one test set reports the same keys: a metric none of whose rows exist is left out (no unanswerable
    question: no hallucination_rate), and one whose rows this resample lacks, or no row answered, is nan.
    """
    r = {key: value[idx] for key, value in rows.items()}
    answerable, answered = r["answerable"] == 1, r["answered"] == 1
    out = {"qa_score": _mean(r["qa_score"], np.ones(len(idx), dtype=bool))}
    if rows["answerable"].any():
        out |= {key: _mean(r[key], answerable) for key in ("token_f1", "rouge_l", "similarity") if key in rows}
        out["false_abstention_rate"] = _mean(r["abstained"], answerable)
    if not rows["answerable"].all():
        out["abstention_rate"] = _mean(r["abstained"], ~answerable)
        out["hallucination_rate"] = _mean(r["answered"], ~answerable)
    out["unsupported_figures"] = _mean(r["unsupported"], answered)
    if "has_gold" in rows and rows["has_gold"].any():
        out |= {
            "recall_at_k": _mean(r["recall_at_k"], r["has_gold"] == 1),
            "mrr": _mean(r["reciprocal_rank"], r["has_gold"] == 1),
        }
    if "has_retrieval" in rows and rows["has_retrieval"].any():
        out["citing"] = _mean(r["cites"], answered & (r["has_retrieval"] == 1))
    return out
