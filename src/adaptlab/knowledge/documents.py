"""A team's documents as text: read page by page, cut into token chunks that remember where they came from.

Formats: PDF (text page by page, with pypdf: on the northwind PDFs it read 71 pages/s
against pdfminer.six's 39, with the same words, bench/rag.py; BSD-licensed), Markdown and plain text
(one page each), HTML (its text, by the standard library's parser), or a JSONL file of
{"id", "text", "title"?}. A file that cannot be read is an error naming it (and the
page), never skipped: a broken, encrypted or image-only PDF says which it is.

Chunks never cross a page, so a chunk's `source` names its page the way the questions'
citations do (`employee_handbook.pdf#page=3`), and keep their character offsets in it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from adaptlab.errors import DataError, Problem

SUFFIXES = (".pdf", ".md", ".txt", ".html", ".htm")


@dataclass(frozen=True)
class Page:
    """The text of one page of one document (page None: a document without pages)."""

    doc: str  # the file's name in the folder, or the JSONL row's id
    page: int | None  # 1-based, PDFs only
    text: str
    title: str = ""


@dataclass(frozen=True)
class Chunk:
    """A window of a page's tokens, with the characters it spans."""

    doc: str
    page: int | None
    index: int  # its place among the page's chunks
    start: int  # character offsets in the page's text
    end: int
    text: str

    @property
    def source(self) -> str:
        """The page it came from, as citations name it: `file.pdf#page=3`, or the document's id."""
        return self.doc if self.page is None else f"{self.doc}#page={self.page}"

    @property
    def id(self) -> str:
        return f"{self.source}/{self.index}"


def read_documents(path: str | Path) -> list[Page]:
    """Every page of a folder's documents (sorted by file name), or of a JSONL file; errors list every unreadable
    file."""
    pages, problems = [], []
    for f, name in document_files(path):
        try:
            pages += read_file(f, name)
        except DataError as exc:
            problems += exc.problems
    if problems:
        raise DataError(problems[:100], truncated=len(problems) > 100)
    return pages


def document_files(path: str | Path) -> list[tuple[Path, str]]:
    """The files under `path` as (file, name in the folder), sorted; a JSONL file is one (`read_file` refuses
    unsupported types)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".jsonl":
        return [(path, path.name)]
    if not path.is_dir():
        raise DataError(
            [
                Problem(
                    "no_documents",
                    str(path),
                    None,
                    None,
                    "not a folder of documents or a .jsonl file",
                    "give data.docs a folder of " + " ".join(SUFFIXES) + ' files, or a .jsonl of {"id", "text"}',
                )
            ]
        )
    files = sorted(
        (f, f.relative_to(path).as_posix()) for f in path.rglob("*") if f.is_file() and not f.name.startswith(".")
    )
    if not files:
        raise DataError(
            [
                Problem(
                    "no_documents",
                    str(path),
                    None,
                    None,
                    "the folder holds no documents",
                    "add " + " ".join(SUFFIXES) + " files",
                )
            ]
        )
    return files


def chunk_pages(pages: list[Page], tokenizer, size: int = 256, overlap: int = 32) -> list[Chunk]:
    """Windows of `size` tokens (the model's tokenizer), each starting `size - overlap` tokens after the last."""
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be at least 0 and less than size ({size}); got {overlap}")
    chunks = []
    for page in pages:
        spans = tokenizer(page.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        for index, first in enumerate(range(0, max(1, len(spans) - overlap), size - overlap)):
            window = spans[first : first + size]
            if not window:
                break
            start, end = window[0][0], window[-1][1]
            chunks.append(Chunk(page.doc, page.page, index, start, end, page.text[start:end]))
    return chunks


def read_file(f: Path, name: str) -> list[Page]:
    """One document's pages with text (`name`: how pages and errors name it)."""
    suffix = f.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(f)
    if suffix not in SUFFIXES:
        raise DataError(
            [
                Problem(
                    "unsupported_document",
                    name,
                    None,
                    None,
                    f"{f.suffix or 'no suffix'}: not a document type adaptlab reads",
                    "convert it to " + ", ".join(SUFFIXES) + ", or move it out of the folder",
                )
            ]
        )
    if suffix == ".pdf":
        return _read_pdf(f, name)
    try:
        text = f.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            [Problem("unreadable_document", name, None, None, f"not UTF-8 text (byte {exc.start})", "save it as UTF-8")]
        ) from None
    if suffix in (".html", ".htm"):
        text = _html_text(text)
    return [Page(name, None, text)] if text.strip() else []


def _read_pdf(f: Path, name: str) -> list[Page]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(f)
        if reader.is_encrypted:
            raise DataError(
                [Problem("encrypted_pdf", name, None, None, "the PDF is encrypted", "save an unencrypted copy")]
            )
        pages = []
        for number, page in enumerate(reader.pages, 1):
            try:
                pages.append(Page(name, number, page.extract_text() or ""))
            except Exception as exc:  # pypdf raises many types for a damaged page
                raise DataError(
                    [
                        Problem(
                            "unreadable_pdf",
                            name,
                            None,
                            None,
                            f"page {number}: cannot extract its text ({type(exc).__name__}: {exc})",
                            "repair or re-export the PDF",
                        )
                    ]
                ) from None
    except (PdfReadError, OSError, ValueError) as exc:
        raise DataError(
            [
                Problem(
                    "unreadable_pdf",
                    name,
                    None,
                    None,
                    f"not a readable PDF ({type(exc).__name__}: {exc})",
                    "repair or re-export the PDF",
                )
            ]
        ) from None
    if pages and not any(p.text.strip() for p in pages):
        raise DataError(
            [
                Problem(
                    "image_only_pdf",
                    name,
                    None,
                    None,
                    f"none of its {len(pages)} pages has text (scanned or image-only?)",
                    "run OCR on it first, or export it with its text",
                )
            ]
        )
    return [p for p in pages if p.text.strip()]


def _read_jsonl(path: Path) -> list[Page]:
    pages, problems = [], []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem("bad_json", str(path), line_no, None, f"not JSON ({exc.msg})", "one JSON object per line")
            )
            continue
        missing = [
            k for k in ("id", "text") if not isinstance(row, dict) or not isinstance(row.get(k), str) or not row.get(k)
        ]
        if missing:
            problems.append(
                Problem(
                    "missing_field",
                    str(path),
                    line_no,
                    missing[0],
                    "a non-empty string is required",
                    'each line: {"id": ..., "text": ..., "title": ...}',
                )
            )
            continue
        pages.append(Page(row["id"], None, row["text"], row.get("title") or ""))
    if problems:
        raise DataError(problems[:100], truncated=len(problems) > 100)
    return pages


class _Text(HTMLParser):
    """An HTML page's visible text: script and style dropped, block elements on their own lines."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "table"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("script", "style")
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(re.sub(r"\s+", " ", data))  # in HTML a line break in text is a space


def _html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)
