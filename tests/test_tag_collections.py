"""`swener tag` on collections: folders and several files, --out-dir, HTML pages, byte-order marks, bad
files inside a folder, and the progress bar over all inputs."""
import gzip
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_tagging import CapitalTagger, cli, one_torch_thread, student, write  # noqa: F401  (fixtures)

from swener.serve import paths, tagging


def tree(root: Path, files: dict[str, bytes]) -> Path:
    """Files (with their folders) under root."""
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def listing(folder: Path) -> list[str]:
    """Every file under a folder (hidden ones too), as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


CORPUS = {"b.txt": "Anna Berg bor i Umeå.\n".encode(),
          "sub/c.txt": "Per Ek åkte till Lund.\n\nHan kom hem.\n".encode(),
          "sub/deeper/a.txt": b"Eva bor i Kiruna.\n",
          "z.txt.gz": gzip.compress("Olle reste till Malmö.\n".encode()),
          ".hidden.txt": b"Dold text.\n",
          ".git/config": b"[core]\n",
          "sub/.cache/x.txt": b"Dold.\n"}


# --------------------------------------------------------------------------- folders and --out-dir


def test_a_folder_means_its_non_hidden_files_in_sorted_order(tmp_path, student):
    folder = tree(tmp_path / "texts", CORPUS)
    other = write(tmp_path / "other.txt", "Karin bor i Visby.\n".encode())
    result = cli("tag", student / "all-loc.pt", folder, other, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    files = [row["file"] for row in map(json.loads, result.stdout.splitlines())]
    assert list(dict.fromkeys(files)) == [str(folder / "b.txt"), str(folder / "sub/c.txt"),
                                          str(folder / "sub/deeper/a.txt"), str(folder / "z.txt.gz"), str(other)]
    assert result.stderr == ""
    assert paths.files_under(str(folder)) == [str(folder / n) for n in
                                                 ("b.txt", "sub/c.txt", "sub/deeper/a.txt", "z.txt.gz")]


@pytest.mark.parametrize("output_format", ["conll", "jsonl", "inline", "html"])
def test_out_dir_writes_one_output_per_input_under_its_relative_path(tmp_path, student, output_format):
    folder = tree(tmp_path / "texts", CORPUS)
    other = write(tmp_path / "other.txt", "Karin bor i Visby.\n".encode())
    out = tmp_path / "out"
    result = cli("tag", student / "all-loc.pt", folder, other, "--out-dir", out, "--format", output_format)
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""
    ext = tagging.EXTENSIONS[output_format]
    assert listing(out) == sorted(f"{name}{ext}" for name in ("b.txt", "sub/c.txt", "sub/deeper/a.txt", "z.txt.gz",
                                                               "other.txt"))
    # each output is what tagging that input alone to -o gives
    for source, name in ((folder / "sub/c.txt", "sub/c.txt"), (folder / "z.txt.gz", "z.txt.gz"), (other, "other.txt")):
        alone = tmp_path / f"alone{ext}"
        assert cli("tag", student / "all-loc.pt", source, "-o", alone, "--format", output_format).exit_code == 0
        expected = alone.read_text(encoding="utf-8")
        if output_format == "html":  # the page names its model: the same here
            assert "model " in expected
        assert (out / f"{name}{ext}").read_text(encoding="utf-8") == expected
    # the inputs are untouched, and a second run replaces the outputs with the same
    assert listing(folder) == sorted(CORPUS)
    before = {name: (out / name).read_bytes() for name in listing(out)}
    assert cli("tag", student / "all-loc.pt", folder, other, "--out-dir", out, "--format", output_format
               ).exit_code == 0
    assert {name: (out / name).read_bytes() for name in listing(out)} == before


def test_refusals_are_one_line_and_write_nothing(tmp_path, student):
    folder = tree(tmp_path / "texts", {"a.txt": b"Anna bor i Lund.\n", "sub/b.txt": b"Per bor i Lund.\n"})
    twin = write(tmp_path / "a.txt", b"Eva bor i Visby.\n")
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-hidden").mkdir()
    write(tmp_path / "only-hidden" / ".x.txt", b"Dold.\n")
    old = tree(tmp_path / "old", {"a.txt.conll": b"old\n", "sub": b"a file, not a folder\n"})
    model = student / "all-loc.pt"
    cases = [
        ((folder, twin, "--out-dir", out), f"{out / 'a.txt.conll'}: two inputs would be written here "
                                           f"({folder / 'a.txt'} and {twin})"),
        ((folder, "--out-dir", folder), f"--out-dir {folder} is inside the input folder {folder}"),
        ((folder, "--out-dir", folder / "sub" / "out"), "is inside the input folder"),
        (("-", "--out-dir", out), "stdin (-) has no name"),
        ((folder, "-o", tmp_path / "x.conll", "--out-dir", out), "give either -o FILE"),
        ((folder, "--format", "html"), "--format html writes one page per input, and there are 2 inputs: "
                                       "give --out-dir DIR"),
        ((folder, "--format", "html", "-o", tmp_path / "x.html"), "give --out-dir DIR"),
        ((tmp_path / "empty",), "empty: a folder with no files to tag"),
        ((tmp_path / "only-hidden",), "a folder with no files to tag (hidden files and folders are skipped)"),
        ((tmp_path / "nope",), "nope: no such file or folder"),
        ((twin, "--out-dir", twin), "not a folder"),
        ((folder, "--out-dir", old), f"{old / 'sub'}: a file where a folder of outputs goes"),
        # an output that is an input: old/a.txt.conll is given as an input and would be replaced
        ((twin, old / "a.txt.conll", "--out-dir", old), f"{old / 'a.txt.conll'}: the output file is an input"),
    ]
    for args, message in cases:
        result = cli("tag", model, *args)
        assert result.exit_code == 1 and message in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert not out.exists() and not (tmp_path / "x.conll").exists() and not (tmp_path / "x.html").exists()
        assert listing(folder) == ["a.txt", "sub/b.txt"] and listing(old) == ["a.txt.conll", "sub"]
    assert (old / "a.txt.conll").read_bytes() == b"old\n"
    # through a symbolic link too
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "a.txt.conll").symlink_to(twin)
    result = cli("tag", model, twin, "--out-dir", tmp_path / "link")
    assert result.exit_code == 1 and "the output file is an input" in result.stderr
    assert twin.read_bytes() == b"Eva bor i Visby.\n"


# --------------------------------------------------------------------------- bad files inside a folder


def test_a_bad_file_in_a_folder_stops_with_its_line_and_leaves_complete_outputs(tmp_path, student):
    good = "".join(f"Mening {i} om Anna i Umeå.\n" for i in range(200)).encode()
    folder = tree(tmp_path / "texts", {"a.txt": good, "b.txt": "Hej.\nGöteborg är fint.\n".encode("latin-1"),
                                       "c.txt": b"Per bor i Lund.\n"})
    out = tree(tmp_path / "out", {"b.txt.conll": b"old results\n"})
    model = student / "all-loc.pt"
    result = cli("tag", model, folder, "--out-dir", out, "--batch-size", "2")
    assert result.exit_code == 1
    assert result.stderr == (f"error: {folder / 'b.txt'}:2: not UTF-8 (byte 0xf6 at byte 2 of the line); "
                             "fix the encoding or use --errors replace\n")
    assert listing(out) == ["a.txt.conll", "b.txt.conll"]  # no temporary file, nothing for c.txt
    assert (out / "b.txt.conll").read_bytes() == b"old results\n"
    assert (out / "a.txt.conll").read_text(encoding="utf-8").count("\n\n") == 200
    result = cli("tag", model, folder, "--out-dir", out, "--errors", "replace", "--format", "inline")
    assert result.exit_code == 0 and listing(out) == ["a.txt.conll", "a.txt.inline.txt", "b.txt.conll",
                                                      "b.txt.inline.txt", "c.txt.inline.txt"]
    assert "[G]LOC [\ufffd]LOC [teborg]LOC" in (out / "b.txt.inline.txt").read_text(encoding="utf-8")


def test_odd_files_in_a_folder(tmp_path, student, monkeypatch):
    monkeypatch.setattr(tagging, "MAX_LINE_BYTES", 64)  # "one huge line": read in pieces
    huge = " ".join(f"Ord{i}" for i in range(300)).encode()
    folder = tree(tmp_path / "texts", {"1-empty.txt": b"", "2-bom.txt": b"\xef\xbb\xbfAnna bor i Lund.\n",
                                       "3-crlf.txt": b"Anna bor\r\ni Lund.\r\n", "4-huge.txt": huge})
    out = tmp_path / "out"
    result = cli("tag", student / "all-loc.pt", folder, "--out-dir", out, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert (out / "1-empty.txt.jsonl").read_bytes() == b""
    tokens = [t for row in rows_of(out / "4-huge.txt.jsonl") for t in row["tokens"]]
    assert tokens == huge.decode().split()
    for name in ("2-bom.txt", "3-crlf.txt", "4-huge.txt"):
        text = open(folder / name, encoding="utf-8", newline="").read()
        entities = [e for row in rows_of(out / f"{name}.jsonl") for e in row["entities"]]
        assert entities and all(text[e["start"]:e["end"]] == e["text"] for e in entities)
    write(folder / "5-nul.txt", b"Anna\x00bor\n")
    result = cli("tag", student / "all-loc.pt", folder, "--out-dir", out)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr == f"error: {folder / '5-nul.txt'}:1: {tagging.BINARY}\n"
    assert listing(out) == sorted([f"{n}{ext}" for n in ("1-empty.txt", "2-bom.txt", "3-crlf.txt", "4-huge.txt")
                                   for ext in (".jsonl", ".conll")])


# --------------------------------------------------------------------------- byte-order marks


@pytest.mark.parametrize("input_format", ["text", "tokens"])
def test_byte_order_marks_do_not_shift_offsets_or_stick_to_tokens(tmp_path, student, input_format):
    data = ("\ufeffKarin Larsson bor i Umeå .\nHej .\n\ufeffPer Albin åkte till Lund .\r\n"
            "Mitt i \ufeffraden Eva .\n").encode()
    source = write(tmp_path / "bom.txt", data)
    for model in (student / "all-loc.pt", None):
        if model is None:  # the stand-in tagger, whose entities span several tokens
            out = tmp_path / "out.jsonl"
            tagging.tag_files(CapitalTagger(), [str(source)], out, "jsonl", input_format, progress=False)
            rows = rows_of(out)
        else:
            result = cli("tag", model, source, "--format", "jsonl", "--input-format", input_format)
            assert result.exit_code == 0, result.output
            rows = [json.loads(line) for line in result.stdout.splitlines()]
        tokens = [t for row in rows for t in row["tokens"]]
        assert tokens[0] == "Karin" and "Per" in tokens and "raden" in tokens
        assert not any("\ufeff" in t for t in tokens)
        assert [row["line"] for row in rows] == [1, 2, 3, 4]
        if input_format == "tokens":
            continue
        text = open(source, encoding="utf-8", newline="").read()  # the text as it stands, the marks counted
        entities = [e for row in rows for e in row["entities"]]
        assert len(entities) >= 5
        for row in rows:
            assert text[row["start"]:row["end"]] == row["text"]
        for entity in entities:
            assert text[entity["start"]:entity["end"]] == entity["text"]
        if model is None:
            assert [e["text"] for e in entities][:2] == ["Karin Larsson", "Umeå"]


# --------------------------------------------------------------------------- HTML


VOID = {"meta", "br", "hr", "img", "input", "link"}


class Page(HTMLParser):
    """What a page holds: its tags and attributes, its title, the text part and its marks, the legend, the CSS."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.text, self.title, self.css = [], [], []
        self.marks: list[list] = []  # [attributes, text] of each mark in the text
        self.legend: list[list] = []  # [class, text] of each legend entry

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag in VOID:
            return
        self.stack.append(attrs.get("class") or tag)
        if tag == "mark" and "text" in self.stack:
            self.marks.append([attrs, ""])
        if tag == "li" and "legend" in self.stack:
            self.legend.append(["", ""])
        if tag == "mark" and "legend" in self.stack:
            self.legend[-1][0] = attrs["class"]

    def handle_endtag(self, tag):
        assert self.stack, tag
        self.stack.pop()

    def handle_data(self, data):
        if "text" in self.stack:
            self.text.append(data)
            if self.stack[-1].startswith("e-"):
                self.marks[-1][1] += data
        if "legend" in self.stack and self.legend:
            self.legend[-1][1] += data
        if self.stack and self.stack[-1] == "title":
            self.title.append(data)
        if self.stack and self.stack[-1] == "style":
            self.css.append(data)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == []  # every element closed
    return parser


HOSTILE = ('Anna <script>alert(1)</script> & "Berg" bor i Umeå.\r\n\r\n   Per\'s <img src=x onerror=alert(2)> '
           'AB &amp; Co.\n<a href="http://evil.example/">Lund</a> @import url(x)\n')


def test_html_page_is_inert_escaped_and_keeps_the_lines(tmp_path, student):
    name = 'in <b>"&\'.txt'
    source = write(tmp_path / name, HOSTILE.encode())
    out = tmp_path / "out"
    result = cli("tag", student / "all-loc.pt", source, "--out-dir", out, "--format", "html")
    assert result.exit_code == 0, result.output
    page = (out / f"{name}.html").read_text(encoding="utf-8")
    for raw in ("<script", "<img", "<a ", "<b>", "& ", '"&'):
        assert raw not in page.lower(), raw
    assert re.findall(r"&[^;]*;", page) == re.findall(r"&(?:amp|lt|gt|quot|#x27);", page)  # every & escaped
    assert page.count("&amp;") >= 4 and "in &lt;b&gt;&quot;&amp;&#x27;.txt" in page
    parsed = parse(page)
    assert {tag for tag, _ in parsed.tags} <= {"html", "head", "meta", "title", "style", "body", "div", "mark", "h1",
                                               "ul", "li", "p"}
    attributes = {key for _, attrs in parsed.tags for key in attrs}
    assert attributes <= {"lang", "charset", "name", "content", "class", "data-type", "title"}, attributes
    assert "@import" not in "".join(parsed.css) and "url(" not in "".join(parsed.css)
    assert "".join(parsed.title) == f"{source} \u2013 swener"
    # the text part is the input, character for character (but for its last line end)
    assert "".join(parsed.text) == HOSTILE.replace("\r\n", "\n").rstrip("\n")  # read_text: CRLF to LF
    assert [text for _, text in parsed.marks] == [t.text for s in tagging.split_sentences(HOSTILE) for t in s]
    assert all(attrs["title"].startswith("LOC, confidence ") for attrs, _ in parsed.marks)

    # the issue's own check, on a page of the text: inert, and no external reference at all
    source = write(tmp_path / "issue.txt", 'Anna <script>alert(1)</script> & "Berg" i Umeå.\n'.encode())
    page = tmp_path / "issue.html"
    tagging.tag_files(CapitalTagger(), [str(source)], page, "html", progress=False, model="capital")
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "&amp;" in html and "& " not in html
    for reference in ("src=", "href=", "@import", "url(", "http:", "https:"):
        assert reference not in html.lower(), reference
    parsed = parse(html)
    assert [(text, attrs["title"]) for attrs, text in parsed.marks] == [
        ("Anna", "PER, confidence 0.75"), ("Berg", "PER, confidence 0.75"), ("Umeå", "PER, confidence 0.75")]
    assert all(attrs["class"] == "e-PER" and attrs["data-type"] == "PER" for attrs, _ in parsed.marks)
    assert [entry[0] for entry in parsed.legend] == ["e-PER", "e-LOC", "e-ORG", "e-MISC"]
    assert parsed.legend[0][1] == "PER person: 3" and parsed.legend[1][1] == "LOC place: 0"
    assert "".join(parsed.text) == 'Anna <script>alert(1)</script> & "Berg" i Umeå.'


class LeanTagger:
    """A stand-in lean tagger (tag_tokens): capitalised tokens are S-TME with no confidence, 'Lund' is S-LOC."""

    def tag_tokens(self, token_lists, batch_size=64):
        def tag(token):
            return "S-LOC" if token == "Lund" else "S-TME" if token[:1].isupper() else "O"
        return [([tag(t) for t in tokens], None) for tokens in token_lists]


def test_other_types_get_the_fallback_colour_and_no_confidence_is_shown_as_none(tmp_path):
    source = write(tmp_path / "a.txt", "Måndag i Lund.\nSedan tisdag.\n".encode())
    page, jsonl = tmp_path / "a.html", tmp_path / "a.jsonl"
    tagging.tag_files(LeanTagger(), [str(source)], page, "html", progress=False)
    tagging.tag_files(LeanTagger(), [str(source)], jsonl, "jsonl", progress=False)
    parsed = parse(page.read_text(encoding="utf-8"))
    assert [(text, attrs["class"], attrs["title"]) for attrs, text in parsed.marks] == [
        ("Måndag", "e-other", "TME"), ("Lund", "e-LOC", "LOC"), ("Sedan", "e-other", "TME")]
    assert "".join(parsed.text) == "Måndag i Lund.\nSedan tisdag."
    assert parsed.legend[-1] == ["e-other", "TME other type: 2"] and parsed.legend[1] == ["e-LOC", "LOC place: 1"]
    entities = [e for row in rows_of(jsonl) for e in row["entities"]]
    assert [e["type"] for e in entities] == ["TME", "LOC", "TME"] and not any("confidence" in e for e in entities)


def test_tokens_input_html_keeps_one_sentence_a_line(tmp_path):
    source = write(tmp_path / "a.tok", "Anna bor i Lund .\n\n\nPer < Eva .\n".encode())
    page = tmp_path / "a.html"
    tagging.tag_files(CapitalTagger(), [str(source)], page, "html", "tokens", progress=False, max_tokens=2)
    parsed = parse(page.read_text(encoding="utf-8"))
    assert "".join(parsed.text) == "Anna bor i Lund .\n\nPer < Eva ."


def test_html_of_one_input_goes_to_stdout(tmp_path, student):
    folder = tree(tmp_path / "one", {"only.txt": "Anna bor i Lund.\n".encode()})
    result = cli("tag", student / "all-loc.pt", folder, "--format", "html")
    assert result.exit_code == 0, result.output
    parsed = parse(result.stdout)
    assert "".join(parsed.text) == "Anna bor i Lund." and len(parsed.marks) == 5  # all-loc: every token
    assert "".join(parsed.title).startswith(str(folder / "only.txt"))


# --------------------------------------------------------------------------- progress


def test_progress_counts_the_bytes_of_all_inputs(tmp_path, capsys):
    folder = tree(tmp_path / "texts", {"a.txt": b"Anna bor i Lund.\n" * 50, "b.txt.gz": gzip.compress(b"Per.\n" * 99)})
    inputs = paths.find_inputs([str(folder)])
    bar = tagging._progress(inputs, True)
    assert bar.total == 17 * 50 + 5 * 99
    bar.close()
    tagging.tag_files(CapitalTagger(), [str(folder)], tmp_path / "out.conll", progress=True)
    assert "tagging" in capsys.readouterr().err
    tagging.tag_files(CapitalTagger(), [str(folder)], tmp_path / "out.conll", progress=None)  # not a terminal
    assert capsys.readouterr().err == ""
    bar = tagging._progress([*inputs, paths.Input("-", "<stdin>")], True)
    assert bar.total is None
    bar.close()
