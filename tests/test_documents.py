"""Documents in: each format read page by page, unreadable files named, chunks that remember their page and offsets."""

import shutil
from pathlib import Path

import pytest

from adaptlab.errors import DataError
from adaptlab.knowledge.documents import chunk_pages, read_documents

NORTHWIND = (
    Path(__file__).parents[1] / "examples" / "northwind-benefits" / "docs"
)  # the example's PDFs, in the repository


def make_pdf(path: Path, pages: list[str], password: str | None = None) -> Path:
    """A PDF whose pages hold `pages` as text (an empty string: a page without text)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for text in pages:
        page = writer.add_blank_page(612, 792)
        if text:
            stream = DecodedStreamObject()
            stream.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
            page[NameObject("/Contents")] = writer._add_object(stream)
            page[NameObject("/Resources")] = DictionaryObject(
                {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
            )
    if password:
        writer.encrypt(password)
    with open(path, "wb") as f:
        writer.write(f)
    return path


def test_each_format_is_read_page_by_page(tmp_path):
    make_pdf(tmp_path / "plan.pdf", ["Deductible is 2000 dollars", "", "Copay is 30 dollars"])
    (tmp_path / "notes.md").write_text("# Leave\n\nEmployees get **20 days** of leave.\n")
    (tmp_path / "faq.txt").write_text("The office opens at 9.\n")
    (tmp_path / "page.html").write_text(
        "<html><head><style>p{color:red}</style><script>var x = "
        "1;</script></head><body><h1>Gym</h1><p>PerksPlus pays  up to\n1000 "
        "dollars.</p></body></html>"
    )
    pages = read_documents(tmp_path)
    found = {(p.doc, p.page): p.text for p in pages}
    assert set(found) == {
        ("faq.txt", None),
        ("notes.md", None),
        ("page.html", None),
        ("plan.pdf", 1),
        ("plan.pdf", 3),
    }  # the empty page 2 has no text
    assert "2000 dollars" in found["plan.pdf", 1] and "30 dollars" in found["plan.pdf", 3]
    assert found["page.html", None] == "Gym\nPerksPlus pays up to 1000 dollars."  # no style, no script
    assert "**20 days**" in found["notes.md", None]


def test_jsonl_documents_and_their_problems_name_the_line(tmp_path):
    good = tmp_path / "docs.jsonl"
    good.write_text('{"id": "a", "text": "alpha", "title": "A"}\n\n{"id": "b", "text": "beta"}\n')
    assert [(p.doc, p.text, p.title) for p in read_documents(good)] == [("a", "alpha", "A"), ("b", "beta", "")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "alpha"}\nnot json\n{"id": "c"}\n')
    with pytest.raises(DataError) as info:
        read_documents(bad)
    assert [(p.code, p.line, p.field) for p in info.value.problems] == [
        ("bad_json", 2, None),
        ("missing_field", 3, "text"),
    ]


def test_unreadable_files_are_errors_that_say_which_and_why(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    make_pdf(tmp_path / "locked.pdf", ["secret plan"], password="pw")
    make_pdf(tmp_path / "scan.pdf", ["", ""])
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "slides.pptx").write_bytes(b"PK")
    make_pdf(tmp_path / "fine.pdf", ["fine text"])
    with pytest.raises(DataError) as info:
        read_documents(tmp_path)
    codes = {p.file: p.code for p in info.value.problems}
    assert codes == {
        "broken.pdf": "unreadable_pdf",
        "locked.pdf": "encrypted_pdf",
        "scan.pdf": "image_only_pdf",
        "latin1.txt": "unreadable_document",
        "slides.pptx": "unsupported_document",
    }
    assert "2 pages" in str(info.value) and "OCR" in str(info.value)


def test_chunks_stay_on_their_page_overlap_and_keep_offsets(tiny_base, tmp_path):
    make_pdf(tmp_path / "long.pdf", [" ".join(f"word{i}" for i in range(120)), "short page"])
    pages = read_documents(tmp_path)
    chunks = chunk_pages(pages, tiny_base.tokenizer, size=64, overlap=16)
    first_page = [c for c in chunks if c.page == 1]
    assert len(first_page) > 2 and [c.index for c in first_page] == list(range(len(first_page)))
    for chunk in chunks:
        page = next(p for p in pages if p.page == chunk.page)
        assert page.text[chunk.start : chunk.end] == chunk.text and chunk.text
        assert (
            len(tiny_base.tokenizer(chunk.text, add_special_tokens=False)["input_ids"]) <= 64 + 2
        )  # re-tokenising at the edges may differ by a token
    for a, b in zip(first_page, first_page[1:]):
        assert b.start < a.end  # consecutive windows overlap
    assert first_page[-1].end == len(pages[0].text.rstrip())  # the page's end is covered
    assert chunks[-1].source == "long.pdf#page=2" and chunks[-1].id == "long.pdf#page=2/0"
    with pytest.raises(ValueError):
        chunk_pages(pages, tiny_base.tokenizer, size=16, overlap=16)


def test_the_northwind_handbook_reads_with_its_page_numbers(tmp_path):
    shutil.copy(NORTHWIND / "employee_handbook.pdf", tmp_path)  # the handbook alone: all six PDFs take ~8 s to read
    pages = read_documents(tmp_path)
    assert [p.page for p in pages] == list(range(1, 12)) and {p.doc for p in pages} == {
        "employee_handbook.pdf"
    }  # 11 pages, each with text
    assert all(p.text.strip() for p in pages) and "Employee Handbook" in pages[0].text
