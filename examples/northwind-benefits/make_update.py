"""Make the "new version" of one benefits PDF, for a knowledge-that-changes demo.

    python make_update.py            # from examples/northwind-benefits/

Reads docs/Northwind_Standard_Benefits_Details.pdf (MIT, Microsoft; see SOURCE.md) and writes an
edited copy with the same name to updates/Northwind_Standard_Benefits_Details.pdf, in which
(see CHANGES below):

  1. the Standard plan's calendar-year individual deductible is $2,500 instead of $2,000,
  2. its out-of-pocket maximum per person (the Summary of Your Costs) is $7,000 instead of $6,000,
  3. the office-visit benefit "Split Copay for Office Visits" is renamed "Smart Copay for Office Visits".

The edits are made in the pages' text layer, glyph by glyph: each page's content stream is
tokenized, the strings shown by Tj/TJ are decoded with their font (WinAnsi simple fonts, or
Identity-H CID fonts through their /ToUnicode CMap), the old text is found in the sequence of
shown characters (it may be split over several strings, kerning numbers and TJ operators), and
the codes of the characters that differ are replaced by the codes of the new characters in the
same font. Every new character must already be drawn somewhere in the document with that very
font object (the fonts are subsets, so that is what proves the glyph exists). Old and new text
have the same number of characters; where their widths differ, a TJ kerning number after the
changed run puts the rest of the line back where it was. Only the changed string tokens are
rewritten; all other bytes of the content stream stay as they were. Nothing else in the file
changes (fonts, structure tree, metadata, document ID are cloned as they are).

The script then re-reads both PDFs with pypdf and checks that each page's extracted text equals
the original's with exactly the expected replacements (so: old figures/name gone where expected,
new ones present, every other page identical), and prints a summary. It is deterministic:
running it again writes the same bytes.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

HERE = Path(__file__).resolve().parent
NAME = "Northwind_Standard_Benefits_Details.pdf"
SOURCE = HERE / "docs" / NAME
TARGET = HERE / "updates" / NAME


@dataclass(frozen=True)
class Change:
    what: str
    old: str
    new: str
    pages: dict  # 1-based page -> number of occurrences expected on it (and nowhere else)


CHANGES = (
    # Every "$2,000" in the file is this deductible: p3 "The deductible for Northwind Standard is
    # $2,000 per person, per year ... pay the first $2,000 of your medical expenses", p13 "a calendar
    # year deductible of $2,000 for each individual and $4,000 for each family" (the family figure
    # is left as it is).
    Change("calendar-year individual deductible", "$2,000", "$2,500", {3: 2, 13: 1}),
    # The only "$6,000": p3 "The out-of-pocket maximum for Northwind Standard is $6,000 per person,
    # per year" (no family figure is stated with it). Pages 14-15 state a different maximum,
    # "$6,350 for an individual and $12,700 for a family"; the original already disagrees with
    # itself there, and those figures are left as they are.
    Change("out-of-pocket maximum per person", "$6,000", "$7,000", {3: 1}),
    # The named benefit "Split Copay for Office Visits" (headings on p11, section on p12).
    Change("renamed benefit", "Split Copay", "Joint Copay", {11: 2, 12: 8}),
)


# --------------------------------------------------------------------------- content streams

WHITESPACE = b"\x00\t\n\x0c\r "
DELIMITERS = b"()<>[]{}/%"


@dataclass
class Token:
    kind: str  # "str" (literal), "hex", "op", "num", "name", "[", "]", "<<", ">>", "inline"
    start: int
    end: int
    value: bytes  # for strings: the decoded bytes; otherwise the raw token


def _literal(data: bytes, i: int) -> tuple[bytes, int]:
    """Decode the literal string starting at data[i] == '('; return (bytes, index after ')')."""
    out, depth, i = bytearray(), 1, i + 1
    escapes = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
    while True:
        c = data[i]
        if c == 0x5C:  # backslash
            i += 1
            c = data[i]
            if c in escapes:
                out.append(escapes[c])
                i += 1
            elif 0x30 <= c <= 0x37:
                j = i
                while j < len(data) and j < i + 3 and 0x30 <= data[j] <= 0x37:
                    j += 1
                out.append(int(data[i:j], 8) & 0xFF)
                i = j
            elif c in b"\r\n":  # line continuation
                i += 2 if data[i : i + 2] == b"\r\n" else 1
            else:
                out.append(c)
                i += 1
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
        out.append(c)
        i += 1


def tokenize(data: bytes) -> list[Token]:
    tokens, i, n = [], 0, len(data)
    while i < n:
        c = data[i]
        if c in WHITESPACE:
            i += 1
        elif c == 0x25:  # % comment
            while i < n and data[i] not in b"\r\n":
                i += 1
        elif c == 0x28:
            value, j = _literal(data, i)
            tokens.append(Token("str", i, j, value))
            i = j
        elif data[i : i + 2] in (b"<<", b">>"):
            tokens.append(Token(data[i : i + 2].decode(), i, i + 2, data[i : i + 2]))
            i += 2
        elif c == 0x3C:
            j = data.index(b">", i)
            digits = re.sub(rb"\s", b"", data[i + 1 : j])
            tokens.append(Token("hex", i, j + 1, bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode())))
            i = j + 1
        elif c in b"[]":
            tokens.append(Token(chr(c), i, i + 1, data[i : i + 1]))
            i += 1
        else:
            j = i + 1
            while j < n and data[j] not in WHITESPACE and data[j] not in DELIMITERS:
                j += 1
            word = data[i:j]
            if c == 0x2F:
                kind = "name"
            elif re.fullmatch(rb"[+-]?(\d+\.?\d*|\.\d+)", word):
                kind = "num"
            else:
                kind = "op"
            if word == b"ID":  # inline image data: skip to EI
                end = re.compile(rb"[\x00\t\n\x0c\r ]EI(?=[\x00\t\n\x0c\r ]|$)").search(data, j + 1)
                tokens.append(Token("inline", i, end.end(), b""))
                i = end.end()
                continue
            tokens.append(Token(kind, i, j, word))
            i = j
    return tokens


# --------------------------------------------------------------------------- fonts


def parse_tounicode(cmap: bytes) -> dict[bytes, str]:
    """code bytes -> unicode text, from a /ToUnicode CMap (bfchar and bfrange sections)."""
    result = {}

    def text(hexdigits: bytes) -> str:
        return bytes.fromhex(hexdigits.decode()).decode("utf-16-be")

    for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            result[bytes.fromhex(src.decode())] = text(dst)
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(<[0-9A-Fa-f]+>|\[[^\]]*\])", block):
            size, lo_i, hi_i = len(lo) // 2, int(lo, 16), int(hi, 16)
            if dst.startswith(b"["):
                targets = [text(t) for t in re.findall(rb"<([0-9A-Fa-f]+)>", dst)]
                for k, t in enumerate(targets):
                    result[(lo_i + k).to_bytes(size, "big")] = t
            else:
                base = bytes.fromhex(dst[1:-1].decode())
                for k in range(hi_i - lo_i + 1):
                    code = base[:-2] + (int.from_bytes(base[-2:], "big") + k).to_bytes(2, "big")
                    result[(lo_i + k).to_bytes(size, "big")] = code.decode("utf-16-be")
    return result


class Font:
    """What we need of one font object: code <-> unicode, glyph widths, and the characters the
    document draws with it (a subset font holds those glyphs, and maybe no others)."""

    def __init__(self, font: DictionaryObject):
        self.name = str(font.get("/BaseFont"))
        self.type0 = font["/Subtype"] == "/Type0"
        self.code_size = 2 if self.type0 else 1
        if self.type0 and font.get("/Encoding") != "/Identity-H":
            raise SystemExit(f"{self.name}: only Identity-H CID fonts are handled")
        self.to_unicode: dict[bytes, str] = {}
        if "/ToUnicode" in font:
            self.to_unicode = parse_tounicode(font["/ToUnicode"].get_object().get_data())
        elif self.type0:
            raise SystemExit(f"{self.name}: CID font without /ToUnicode")
        self.widths: dict[bytes, float] = {}
        if self.type0:
            cid_font = font["/DescendantFonts"][0].get_object()
            default = float(cid_font.get("/DW", 1000))
            w = [x.get_object() for x in cid_font.get("/W", [])]
            k = 0
            while k < len(w):
                first = int(w[k])
                if isinstance(w[k + 1], ArrayObject):
                    for m, width in enumerate(w[k + 1]):
                        self.widths[(first + m).to_bytes(2, "big")] = float(width)
                    k += 2
                else:
                    for cid in range(first, int(w[k + 1]) + 1):
                        self.widths[cid.to_bytes(2, "big")] = float(w[k + 2])
                    k += 3
            self.default_width = default
        else:
            first = int(font.get("/FirstChar", 0))
            for m, width in enumerate(font.get("/Widths", [])):
                self.widths[bytes([first + m])] = float(width)
            self.default_width = 0.0
        self.drawn: set[bytes] = set()  # codes shown anywhere in the document with this font

    def decode(self, code: bytes) -> str:
        if code in self.to_unicode:
            return self.to_unicode[code]
        if self.type0:
            raise SystemExit(f"{self.name}: code {code.hex()} not in /ToUnicode")
        return code.decode("cp1252")  # WinAnsiEncoding (the simple fonts here declare it)

    def encode(self, char: str) -> bytes:
        """The code that draws `char` in this font; it must be one the document already draws."""
        codes = sorted(code for code in self.drawn if self.decode(code) == char)
        if not codes:
            raise LookupError(f"{char!r} is not drawn anywhere with {self.name}: no glyph known in the subset")
        return codes[0]

    def width(self, code: bytes) -> float:
        return self.widths.get(code, self.default_width)


@dataclass
class Glyph:
    token: int  # index of the string token in the page's token list
    offset: int  # byte offset of the code inside the token's decoded bytes
    font: Font
    code: bytes
    char: str
    in_array: bool  # shown by TJ (so a kerning number may follow it)


def page_glyphs(data: bytes, tokens: list[Token], fonts: dict[str, Font]) -> list[Glyph]:
    """Every character the page's content stream shows, in stream order."""
    glyphs, current, depth, pending = [], None, 0, []
    for idx, tok in enumerate(tokens):
        if tok.kind == "[":
            depth += 1
        elif tok.kind == "]":
            depth -= 1
        elif tok.kind in ("str", "hex"):
            pending.append((idx, depth > 0))
        elif tok.kind == "op":
            if tok.value == b"Tf":
                name = tokens[idx - 2].value.decode()
                current = fonts[name]
            elif tok.value in (b"Tj", b"TJ", b"'", b'"'):
                for s_idx, in_array in pending:
                    raw = tokens[s_idx].value
                    size = current.code_size
                    for off in range(0, len(raw) - len(raw) % size, size):
                        code = raw[off : off + size]
                        glyphs.append(Glyph(s_idx, off, current, code, current.decode(code), in_array))
            pending = []
    return glyphs


def page_fonts(page, cache: dict) -> dict[str, Font]:
    result = {}
    for name, ref in page["/Resources"].get_object().get("/Font", {}).items():
        key = ref.idnum if hasattr(ref, "idnum") else id(ref)
        if key not in cache:
            cache[key] = Font(ref.get_object())
        result[name] = cache[key]
    return result


def content_stream(page) -> StreamObject:
    contents = page["/Contents"].get_object()
    if not isinstance(contents, StreamObject):
        raise SystemExit("pages with several content streams are not handled")
    return contents


def show_advances(page) -> list[tuple[int, float]]:
    """For each text-showing operator of the page: (characters shown, horizontal advance in
    1/1000 text space units: glyph widths minus TJ numbers). Character and word spacing (Tc, Tw)
    and the font size apply to both versions alike, so equal lists mean every glyph after an
    edited run is drawn exactly where it was."""
    fonts = page_fonts(page, {})
    data = content_stream(page).get_data()
    tokens = tokenize(data)
    result, current, pending = [], None, []
    for idx, tok in enumerate(tokens):
        if tok.kind in ("str", "hex", "num"):
            pending.append(tok)
        elif tok.kind == "op":
            if tok.value == b"Tf":
                current = fonts[tokens[idx - 2].value.decode()]
            elif tok.value in (b"Tj", b"TJ", b"'", b'"'):
                chars, advance = 0, 0.0
                for t in pending:
                    if t.kind == "num":
                        advance -= float(t.value) if tok.value == b"TJ" else 0.0
                        continue
                    size = current.code_size
                    for off in range(0, len(t.value) - len(t.value) % size, size):
                        chars += 1
                        advance += current.width(t.value[off : off + size])
                result.append((chars, advance))
            pending = []
    return result


# --------------------------------------------------------------------------- editing


def serialize(tok: Token, value: bytes) -> bytes:
    if tok.kind == "hex":
        return b"<" + value.hex().upper().encode() + b">"
    out = bytearray(b"(")
    for b in value:
        if b in b"()\\":
            out += b"\\" + bytes([b])
        elif b < 32 or b > 126:
            out += b"\\%03o" % b
        else:
            out.append(b)
    return bytes(out + b")")


def fmt(number: float) -> bytes:
    text = f"{number:.3f}".rstrip("0").rstrip(".")
    return (text if text not in ("-0", "") else "0").encode()


def edit_page(data: bytes, tokens: list[Token], glyphs: list[Glyph], change: Change) -> tuple[bytes, int]:
    """Replace every occurrence of change.old in the shown text by change.new; return (data, count).

    Where the new characters are wider or narrower than the old ones, the difference is given
    back as TJ kerning, spread evenly over the changed characters (one number after each), so
    every glyph after the changed word sits exactly where it was and no gap is opened or closed
    in one place."""
    shown = "".join(g.char for g in glyphs)
    if any(len(g.char) != 1 for g in glyphs):
        raise SystemExit("a code maps to several characters; position mapping would be off")
    new_values = {}  # string token index -> bytearray of its decoded bytes
    kerning = {}  # (string token index, byte offset after which to add a TJ number) -> adjustment
    count = 0
    for match in re.finditer(re.escape(change.old), shown):
        count += 1
        changed = []
        for g, new_char in zip(glyphs[match.start() : match.end()], change.new):
            if new_char == g.char:
                continue
            new_code = g.font.encode(new_char)
            changed.append((g, g.font.width(new_code) - g.font.width(g.code)))
            value = new_values.setdefault(g.token, bytearray(tokens[g.token].value))
            value[g.offset : g.offset + len(new_code)] = new_code
        delta = sum(d for _, d in changed)  # new width - old width, in 1/1000 text space units
        if abs(delta) > 1e-6:
            for g, _ in changed:
                if not g.in_array:
                    raise SystemExit(f"width changes in {change.old!r} but it is shown by Tj, not TJ")
                # a positive TJ number moves what follows left: give back what the new text added
                key = (g.token, g.offset + len(g.code))
                kerning[key] = kerning.get(key, 0.0) + delta / len(changed)
    if not count:
        return data, 0

    replace = {}  # token index -> new bytes for its span
    number_add = {}  # number token index -> adjustment to add to it
    for idx in sorted(new_values.keys() | {t for t, _ in kerning}):
        tok = tokens[idx]
        value = bytes(new_values.get(idx, tok.value))
        pieces, prev = [], 0
        for off in sorted(off for t, off in kerning if t == idx):
            adjust = kerning[(idx, off)]
            if off == len(value) and tokens[idx + 1].kind == "num":
                number_add[idx + 1] = number_add.get(idx + 1, 0.0) + adjust  # merge with the next number
                continue
            pieces += [serialize(tok, value[prev:off]), fmt(adjust)]
            prev = off
        if prev < len(value) or not pieces:
            pieces.append(serialize(tok, value[prev:]))
        replace[idx] = b"".join(pieces)
    for idx, adjust in number_add.items():
        replace[idx] = fmt(float(tokens[idx].value) + adjust)

    out, pos = bytearray(), 0
    for idx in sorted(replace):
        out += data[pos : tokens[idx].start] + replace[idx]
        pos = tokens[idx].end
    out += data[pos:]
    return bytes(out), count


# --------------------------------------------------------------------------- main


def normalize(text: str) -> str:
    return " ".join(text.split())


def main() -> None:
    reader = PdfReader(SOURCE)
    writer = PdfWriter(clone_from=reader)
    cache: dict = {}

    # 1. every page: tokens, fonts, glyphs; record which codes each font object draws
    pages = []
    for page in writer.pages:
        data = content_stream(page).get_data()
        tokens = tokenize(data)
        fonts = page_fonts(page, cache)
        glyphs = page_glyphs(data, tokens, fonts)
        for g in glyphs:
            g.font.drawn.add(g.code)
        pages.append((page, data, tokens, fonts))

    # 2. edit, change by change, page by page (re-tokenizing after each edit)
    found = {c.old: {} for c in CHANGES}
    for number, (page, data, tokens, fonts) in enumerate(pages, start=1):
        original = data
        for change in CHANGES:
            tokens = tokenize(data)
            data, count = edit_page(data, tokens, page_glyphs(data, tokens, fonts), change)
            if count:
                found[change.old][number] = count
        if data != original:
            content_stream(page).set_data(data)

    for change in CHANGES:
        if found[change.old] != change.pages:
            raise SystemExit(f"{change.old!r}: expected {change.pages}, found {found[change.old]}")

    TARGET.parent.mkdir(parents=True, exist_ok=True)
    with open(TARGET, "wb") as f:
        writer.write(f)

    # 3. verify: re-read both files; each page's text = the original's with exactly the changes
    old_pdf, new_pdf = PdfReader(SOURCE), PdfReader(TARGET)
    assert len(old_pdf.pages) == len(new_pdf.pages)
    changed_pages = sorted({p for c in CHANGES for p in c.pages})
    for number, (old_page, new_page) in enumerate(zip(old_pdf.pages, new_pdf.pages), start=1):
        old_text, new_text = old_page.extract_text(), new_page.extract_text()
        if number not in changed_pages:
            assert new_text == old_text, f"page {number} changed"
            continue
        old_adv, new_adv = show_advances(old_page), show_advances(new_page)
        assert len(old_adv) == len(new_adv), f"page {number}: number of text operators changed"
        for (n_old, a_old), (n_new, a_new) in zip(old_adv, new_adv):
            assert n_old == n_new and abs(a_old - a_new) < 0.01, f"page {number}: a text run's length changed"
        expected = old_text
        for change in CHANGES:
            want = change.pages.get(number, 0)
            n_old = normalize(old_text).count(change.old)
            assert n_old == want, f"page {number}: {change.old!r} {n_old} times in the original text, expected {want}"
            assert normalize(new_text).count(change.old) == 0, f"page {number}: {change.old!r} still there"
            assert normalize(new_text).count(change.new) >= want, f"page {number}: {change.new!r} missing"
            expected = expected.replace(change.old, change.new)
        assert normalize(new_text) == normalize(expected), f"page {number}: text differs beyond the changes"
        assert new_text == expected, f"page {number}: layout of the extracted text changed"
    new_all = " ".join(normalize(p.extract_text()) for p in new_pdf.pages)
    for change in CHANGES:
        assert change.old not in new_all, f"{change.old!r} still in the new file"

    print(f"{SOURCE.relative_to(HERE)} -> {TARGET.relative_to(HERE)}  ({len(new_pdf.pages)} pages)")
    for change in CHANGES:
        where = ", ".join(f"p{p}" + (f" x{n}" if n > 1 else "") for p, n in change.pages.items())
        print(f"  {change.what}: {change.old!r} -> {change.new!r}  ({where})")
    print(
        f"  pages changed: {changed_pages}; all other {len(new_pdf.pages) - len(changed_pages)} pages' text identical"
    )
    print(f"  sha256 {hashlib.sha256(TARGET.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
