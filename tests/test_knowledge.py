"""The page's knowledge (KNOWLEDGE_DIR): what reaches the model from the owner's files, and when."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inboxgpt.channels.messenger import MessengerChannel
from inboxgpt.config import ConfigError, settings_from_mapping
from inboxgpt.model import knowledge, prompt
from inboxgpt.model.knowledge import SECTION_TOKENS, read_folder, sections_of
from inboxgpt.web.app import EXTENSION
from tests.helpers import page_body, poster, text_event

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "knowledge"
HOURS = "Tuesday to Friday we open at 7:30 am"


def pdf_with(*pages: str) -> bytes:
    """A small valid PDF: one line of Helvetica text on each page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        page = len(objects) + 1
        kids.append(f"{page} 0 R")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {page + 1} 0 R "
            f"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


@pytest.fixture
def folder(tmp_path):
    """A copy of the example business's knowledge, free to change."""
    copy = tmp_path / "knowledge"
    shutil.copytree(EXAMPLE, copy)
    return copy


@pytest.fixture
def ask(config, make_app, openai_server, folder):
    """Build an app on the knowledge folder with extra settings; return a function that sends one message
    and returns the system message the model read for it."""

    def ask(text: str, **settings: str):
        from tests.helpers import poster

        config.update(KNOWLEDGE_DIR=str(folder), **settings)
        key = tuple(sorted(config.items()))
        if key not in apps:
            apps[key] = poster(make_app(config))
        apps[key](page_body(text_event(text)))
        return openai_server.requests[-1]["messages"][0]["content"]

    apps: dict = {}
    return ask


# --- what is read, and how it is cut ---


def test_markdown_is_cut_at_headings_keeping_the_heading_path():
    text = "# Shop\nintro line\n## Hours\nOpen at 9.\n### Sunday\nClosed.\n## Prices\nCheap.\n"
    sections = sections_of("shop.md", text, markdown=True)
    assert [(s.headings, s.text) for s in sections] == [
        (("Shop",), "intro line"),
        (("Shop", "Hours"), "Open at 9."),
        (("Shop", "Hours", "Sunday"), "Closed."),
        (("Shop", "Prices"), "Cheap."),
    ]
    assert sections[2].title == "shop.md > Shop > Hours > Sunday"


def test_a_hash_inside_a_code_block_is_not_a_heading():
    text = "## Setup\n```\n# not a heading\nrun it\n```\nafter"
    (section,) = sections_of("setup.md", text, markdown=True)
    assert section.headings == ("Setup",)
    assert "# not a heading" in section.text


def test_long_text_is_cut_at_paragraphs_then_sentences_into_sections_of_a_few_hundred_tokens():
    paragraph = " ".join(f"Sentence number {n} says something useful about the shop." for n in range(60))
    sections = sections_of("long.txt", f"Short first paragraph.\n\n{paragraph}\n\nLast words.", markdown=False)
    assert len(sections) > 2
    assert all(section.tokens() <= SECTION_TOKENS + 40 for section in sections)  # 40: the title line
    assert sections[0].text.startswith("Short first paragraph.")
    assert "Last words." in sections[-1].text
    assert all(section.title == "long.txt" for section in sections)


words = st.text(alphabet="abcdefghij", min_size=1, max_size=12)
lines = st.lists(st.one_of(words.map(lambda w: f"## {w}"), st.lists(words, max_size=80).map(" ".join)), max_size=40)


@given(lines)
def test_sectioning_keeps_every_word_in_order(text_lines):
    text = "\n\n".join(text_lines)
    body = [w for line in text_lines if not line.startswith("## ") for w in line.split()]
    sections = sections_of("file.md", text, markdown=True)
    assert [w for section in sections for w in section.text.split()] == body


def test_pdf_text_is_read_page_by_page(folder):
    (folder / "menu.pdf").write_bytes(pdf_with("Lobster roll 18 pounds", "Oysters six for 15 pounds"))
    library = read_folder(folder, 10**6)
    pdf = [section for section in library.sections if section.source == "menu.pdf"]
    assert [(s.headings, s.text) for s in pdf] == [
        (("page 1",), "Lobster roll 18 pounds"),
        (("page 2",), "Oysters six for 15 pounds"),
    ]


def test_broken_files_are_skipped_with_one_warning_each_and_the_rest_is_read(folder, caplog, make_app, config):
    (folder / "empty.md").write_text("")
    (folder / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    (folder / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (folder / "big.md").write_text("word " * 400)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (folder / "notes.docx").write_bytes(b"PK\x03\x04")
    config.update(KNOWLEDGE_DIR=str(folder), KNOWLEDGE_MAX_FILE_BYTES="1500")
    with caplog.at_level(logging.INFO, logger="inboxgpt.model.knowledge"):
        make_app(config)
    warnings = sorted(
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "inboxgpt.model.knowledge"
    )
    assert warnings == [
        "knowledge file big.md skipped: 2,000 bytes, over KNOWLEDGE_MAX_FILE_BYTES (1,500)",
        "knowledge file broken.pdf skipped: not a readable PDF (PdfStreamError)",
        "knowledge file empty.md skipped: empty",
        "knowledge file latin1.txt skipped: not UTF-8 text: save it as UTF-8",
        "knowledge file photo.txt skipped: binary, not text",
    ]
    (started,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("knowledge: ")]
    assert started.startswith("knowledge: 8 files, 29 sections")
    assert "(3 files of other kinds ignored)" in started  # questions.json, evals.toml and notes.docx


def test_a_folder_that_does_not_exist_is_refused_at_start(config, tmp_path):
    config.update(KNOWLEDGE_DIR=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="KNOWLEDGE_DIR is invalid: not a folder"):
        settings_from_mapping(config)


# --- what reaches the model ---


def test_without_knowledge_the_system_message_is_as_before(post, openai_server):
    post(page_body(text_event("When do you open?")))
    assert openai_server.requests[-1]["messages"][0]["content"] == prompt.system_message(
        settings_from_mapping({"OPENAI_API_KEY": "x"}, meta_required=False).system_prompt,
        MessengerChannel.formatting_note,
    )


def test_small_knowledge_goes_whole_in_a_stable_order(ask, folder):
    for path in folder.glob("*.md"):
        if path.name != "hours.md":
            path.unlink()
    first = ask("Can I bring my dog?")
    second = ask("How much is a coffee?")
    assert first == second, "the prefix must not change from call to call"
    assert HOURS in first
    assert first.index("Weekdays") < first.index("Weekends") < first.index("Public holidays")
    assert "Below is the page's own knowledge." in first


def test_knowledge_over_the_budget_is_searched_for_each_message(ask):
    system = ask("Can I bring my dog?")
    assert "the parts that match the person's message" in system
    assert "Dogs are not allowed in the bakery shop area" in system
    assert HOURS not in system
    assert "Sourdough loaf (800 g)" not in system


def test_the_budget_switches_between_whole_and_searched(ask):
    whole = ask("Can I bring my dog?", KNOWLEDGE_MAX_TOKENS="2402")
    searched = ask("Can I bring my dog?", KNOWLEDGE_MAX_TOKENS="2401")
    assert HOURS in whole
    assert HOURS not in searched


def test_a_follow_up_reaches_its_section_through_the_last_exchange(ask):
    ask("What time do you open on weekdays?")
    system = ask("and on saturday?")
    assert "Saturday we open from 8 am to 5 pm" in system


def test_a_question_the_knowledge_does_not_cover_is_told_so_and_carries_nothing(ask):
    system = ask("Who won the football yesterday?")
    assert system.endswith(prompt.NO_KNOWLEDGE_FOUND)
    assert "say plainly that you don't know that, never guess, and suggest /human" in system


def test_sections_below_the_relevance_floor_are_left_out(tmp_path, ask, folder):
    for path in folder.iterdir():
        path.unlink()
    # "parking" is rare and repeated in one section; "cafe" is in every section, so it weighs little.
    (folder / "a.md").write_text("## Parking\nParking behind the cafe. Parking is free for parking customers.")
    for n in range(8):
        (folder / f"other{n}.md").write_text(f"## Note {n}\nThe cafe sells bread number {n}. " + "More text. " * 40)
    system = ask("where is parking near the cafe", KNOWLEDGE_MAX_TOKENS="600")
    assert "Parking behind the cafe" in system
    assert "sells bread" not in system, "a weak match on a common word must not pad the prompt"


@pytest.fixture
def reloading(config, make_app, openai_server, folder):
    """An app that looks at the folder at every message; `ask` sends a message, lets the look it started (aside,
    on a thread of its own) end, and sends it again: the system message the model read the second time."""
    config.update(KNOWLEDGE_DIR=str(folder), KNOWLEDGE_RELOAD_SECONDS="0")
    app = make_app(config)
    post = poster(app)
    knowledge = app.extensions[EXTENSION].knowledge

    def ask(text: str) -> str:
        post(page_body(text_event(text)))
        knowledge.settle(timeout=10)
        post(page_body(text_event(text)))
        return openai_server.requests[-1]["messages"][0]["content"]

    return ask


def test_an_edited_added_or_removed_file_is_used_at_the_next_look(reloading, folder):
    assert "Saturday we open from 8 am" in reloading("open on saturday?")
    hours = folder / "hours.md"
    hours.write_text(hours.read_text().replace("Saturday we open from 8 am", "Saturday we open from 10 am"))
    os.utime(hours, ns=(hours.stat().st_atime_ns, hours.stat().st_mtime_ns + 10**9))
    assert "Saturday we open from 10 am" in reloading("open on saturday?")
    (folder / "boats.md").write_text("## Boat trips\nBoat trips leave the harbour at noon.")
    assert "Boat trips leave" in reloading("when do boat trips leave?")
    (folder / "boats.md").unlink()
    assert "Boat trips leave" not in reloading("when do boat trips leave?")


def test_a_reply_never_waits_for_the_files_to_be_read_again(config, make_app, graph, folder, monkeypatch):
    config.update(KNOWLEDGE_DIR=str(folder), KNOWLEDGE_RELOAD_SECONDS="0")
    app = make_app(config)
    order: list[str] = []
    release = threading.Event()
    read = knowledge.read_folder

    def slow_read(*args, **kwargs):
        order.append("reading")
        release.wait(timeout=10)  # a PDF that takes long to read
        order.append("read")
        return read(*args, **kwargs)

    monkeypatch.setattr(knowledge, "read_folder", slow_read)
    (folder / "boats.md").write_text("## Boat trips\nBoat trips leave the harbour at noon.")
    graph.on_call = lambda call: order.append("reply") if "message" in call else None
    poster(app)(page_body(text_event("when do boat trips leave?")))
    release.set()
    app.extensions[EXTENSION].knowledge.settle(timeout=10)
    assert order == ["reading", "reply", "read"]


def test_a_link_to_a_file_outside_the_folder_is_skipped(folder, tmp_path, caplog):
    secret = tmp_path / "dotenv.txt"
    secret.write_text("OPENAI_API_KEY=sk-the-owners-key")
    (folder / "passwords.txt").symlink_to(secret)
    (folder / "hours-again.md").symlink_to(folder / "hours.md")  # a link within the folder is fine
    library = read_folder(folder, 10**7)
    assert ("passwords.txt", "a link to a file outside KNOWLEDGE_DIR") in library.skipped
    assert "hours-again.md" in library.files
    assert not any("sk-the-owners-key" in section.text for section in library.sections)


def pdf_drawing_a_megabyte_on_every_page(pages: int) -> bytes:
    """A PDF of a few kilobytes whose pages share one compressed stream of a megabyte of text drawing."""
    import io

    import pypdf
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = pypdf.PdfWriter()
    drawing = DecodedStreamObject()
    drawing.set_data(b"BT /F1 12 Tf 72 720 Td " + b"(word word word word) Tj 0 -14 Td " * 30_000 + b"ET")
    shared = writer._add_object(drawing.flate_encode())
    font = {NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1")}
    font[NameObject("/BaseFont")] = NameObject("/Helvetica")
    resources = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): DictionaryObject(font)})})
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Contents")] = shared
        page[NameObject("/Resources")] = resources
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_pdf_whose_pages_draw_a_megabyte_each_is_not_read_page_by_page(folder, caplog):
    bomb = pdf_drawing_a_megabyte_on_every_page(10)
    assert len(bomb) < 10_000
    (folder / "catalogue.pdf").write_bytes(bomb)
    with caplog.at_level(logging.WARNING):
        library = read_folder(folder, 10**7)
    assert ("catalogue.pdf", "no text in it") in library.skipped
    assert "catalogue.pdf: page 10 was skipped" in caplog.text


def test_a_pdf_is_read_within_its_page_budget(folder, monkeypatch, caplog):
    monkeypatch.setattr(knowledge.sections, "PDF_MAX_PAGES", 2)
    (folder / "menu.pdf").write_bytes(pdf_with("Croissant 2 euros", "Baguette 1 euro", "Cake 20 euros"))
    with caplog.at_level(logging.WARNING):
        library = read_folder(folder, 10**7)
    texts = " ".join(section.text for section in library.sections if section.source == "menu.pdf")
    assert "Baguette" in texts
    assert "Cake" not in texts
    assert "menu.pdf: only its first 2 pages were read" in caplog.text


def test_a_line_with_no_space_is_cut_into_sections_that_fit(tmp_path):
    (tmp_path / "data.txt").write_text("x" * 100_000)
    library = read_folder(tmp_path, 10**7)
    assert len(library.sections) > 1
    assert all(section.tokens() <= SECTION_TOKENS + 50 for section in library.sections)
    assert "".join(section.text.replace(" ", "") for section in library.sections) == "x" * 100_000


def test_files_are_not_looked_at_again_before_the_reload_interval(ask, folder):
    ask("open on saturday?")
    (folder / "boats.md").write_text("## Boat trips\nBoat trips leave the harbour at noon.")
    assert "Boat trips leave" not in ask("when do boat trips leave?")


def test_the_reply_log_counts_knowledge_without_its_text(ask, caplog, openai_server):
    with caplog.at_level(logging.INFO):
        ask("Can I bring my dog?")
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("replied ")]
    sections = openai_server.requests[-1]["messages"][0]["content"].count("\n## ")
    assert sections > 0
    assert f"knowledge_sections={sections} knowledge_tokens=" in line
    assert all("water bowl" not in r.getMessage() for r in caplog.records)


# --- embeddings ---


def section_inputs(openai_server) -> list[str]:
    """Every text the fake server was asked to embed for a section (sections start with their title)."""
    return [
        text
        for path, request in zip(openai_server.paths, openai_server.requests, strict=True)
        if path.endswith("/embeddings")
        for text in request["input"]
        if text.startswith("## ")
    ]


def test_embeddings_are_computed_once_and_cached_across_restarts(ask, openai_server, folder, make_app, config):
    ask("Can I bring my dog?", EMBEDDING_MODEL="text-embedding-3-small")
    assert len(section_inputs(openai_server)) == 29
    request = openai_server.requests[-2]
    assert request == {
        "model": "text-embedding-3-small",
        "input": ["Can I bring my dog?"],
        "encoding_format": "float",
    }
    openai_server.reset()
    make_app(config)  # a restart: every section is in the cache
    assert section_inputs(openai_server) == []
    hours = folder / "hours.md"
    hours.write_text(hours.read_text().replace("Saturday we open from 8 am", "Saturday we open from 10 am"))
    make_app(config)
    (changed,) = section_inputs(openai_server)
    assert "Saturday we open from 10 am" in changed


def test_the_embedding_cache_forgets_what_no_section_uses(ask, openai_server, folder, make_app, config):
    import sqlite3

    ask("Can I bring my dog?", EMBEDDING_MODEL="text-embedding-3-small")
    for export in range(3):  # the owner exports the catalogue anew: every section's text changes
        for path in folder.glob("*.md"):
            path.write_text(path.read_text() + f"\n\nExported {export}.")
        make_app(config)
    with sqlite3.connect(folder / ".embeddings.sqlite3") as db:
        (kept,) = db.execute("SELECT COUNT(*) FROM embeddings").fetchone()
    assert kept == len(read_folder(folder, 10**7).sections)


def test_a_message_s_embedding_has_a_short_deadline_of_its_own(ask, openai_server):
    ask("Can I bring my dog?", EMBEDDING_MODEL="text-embedding-3-small", EMBEDDING_QUERY_SECONDS="0.5")
    query = [
        headers
        for path, request, headers in zip(
            openai_server.paths, openai_server.requests, openai_server.headers, strict=True
        )
        if path.endswith("/embeddings") and request["input"] == ["Can I bring my dog?"]
    ]
    assert len(query) == 1
    assert query[0]["x-stainless-read-timeout"] == "0.5"


def test_embedding_search_finds_what_words_alone_miss(ask, openai_server):
    # The stemmer makes "deliveri" of "delivery" and "deliv" of "deliver": words alone miss catering,
    # the embedding (which sees them as one root, as a real model would) finds it.
    assert "Free delivery within 5 miles" not in ask("Do you deliver?")
    assert "Free delivery within 5 miles" in ask("Do you deliver?", EMBEDDING_MODEL="text-embedding-3-small")


def test_a_failing_embedding_server_leaves_search_by_words(ask, openai_server, caplog):
    from tests.fakes import openai_error

    original = openai_server.route

    def route(path, request):
        if path.endswith("/embeddings"):
            return openai_error(500, "The server had an error", "server_error")
        return original(path, request)

    openai_server.route = route
    with caplog.at_level(logging.WARNING):
        system = ask("Can I bring my dog?", EMBEDDING_MODEL="text-embedding-3-small")
    assert "Dogs are not allowed in the bakery shop area" in system
    assert any("searching by words only" in r.getMessage() for r in caplog.records)


# --- the terminal command ---


def test_the_knowledge_command_shows_files_sections_and_mode(config, make_app, folder):
    config.update(KNOWLEDGE_DIR=str(folder))
    result = make_app(config).test_cli_runner().invoke(args=["knowledge"])
    assert result.exit_code == 0, result.output
    assert "8 files, 29 sections, about 2402 tokens" in result.output
    assert "mode: searched for each message by words (BM25)" in result.output
    assert "  hours.md > Opening hours > Weekends (84 tokens)" in result.output


def test_the_knowledge_command_shows_what_a_question_brings(config, make_app, folder):
    config.update(KNOWLEDGE_DIR=str(folder))
    result = make_app(config).test_cli_runner().invoke(args=["knowledge", "do you open on sundays?"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("searched: ")
    assert any(line.endswith("hours.md > Opening hours > Weekends") for line in lines[1:])


def test_the_knowledge_command_names_what_a_question_brings_when_sent_whole(config, make_app, folder):
    config.update(KNOWLEDGE_DIR=str(folder), KNOWLEDGE_MAX_TOKENS="100000")
    result = make_app(config).test_cli_runner().invoke(args=["knowledge", "do you open on sundays?"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "whole: every message brings all 29 sections (2402 tokens)"
    assert "  hours.md > Opening hours > Weekends" in lines[1:]
    assert len(lines) == 30


def test_the_knowledge_command_needs_no_messenger_or_openai_settings(folder):
    from tests.test_terminal import flask

    result = flask("knowledge", "where can I park?", KNOWLEDGE_DIR=str(folder))
    assert result.returncode == 0, result.stderr
    assert "directions.md > Finding us > Parking" in result.stdout


def test_the_terminal_chat_answers_from_the_knowledge(folder, openai_server):
    from tests.test_terminal import flask

    result = flask(
        "chat",
        stdin="can I bring my dog?\n",
        KNOWLEDGE_DIR=str(folder),
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=openai_server.base_url,
    )
    assert result.returncode == 0, result.stderr
    assert "water bowl" in openai_server.requests[-1]["messages"][0]["content"]


def test_knowledge_sent_whole_is_never_embedded(ask, openai_server, folder):
    for path in folder.glob("*.md"):
        if path.name != "hours.md":
            path.unlink()
    ask("open on saturday?", EMBEDDING_MODEL="text-embedding-3-small", KNOWLEDGE_RELOAD_SECONDS="0")
    ask("and on sunday?", EMBEDDING_MODEL="text-embedding-3-small", KNOWLEDGE_RELOAD_SECONDS="0")
    assert not any(path.endswith("/embeddings") for path in openai_server.paths)
