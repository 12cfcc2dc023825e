"""Knowledge benchmark: does the search bring the right section, what it costs, and how fast it is.

    python -m bench.knowledge_search
    python -m bench.knowledge_search --quick

Over examples/knowledge and its 40 questions (examples/knowledge/questions.json): how often the
expected section is among those chosen (BM25 alone), at the default budget and at a tight one, and
the knowledge tokens a reply carries searched against whole. Then the time one search takes for
10, 100 and 1,000 sections (median over the questions, in the service's own code path).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from inboxgpt.model.knowledge import Knowledge

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "knowledge"
BUDGETS = (1500, 400)
SIZES = (10, 100, 1000)
TARGET_HIT_RATE = 0.90
TARGET_SEARCH_MS = 5.0


def hit_rate(folder: Path, budget: int) -> tuple[float, float, float, list[str]]:
    """Share of questions whose section was chosen, mean sections and tokens chosen, and the misses."""
    knowledge = Knowledge(folder, budget, 10**7, reload_seconds=3600)
    questions = json.loads((folder / "questions.json").read_text())
    hits, sections, tokens, misses = 0, [], [], []
    for item in questions:
        chosen = knowledge.choose(item["question"], item.get("after", ""))
        titles = [section.title for section in chosen.sections]
        if item["section"] in titles:
            hits += 1
        else:
            misses.append(item["question"])
        sections.append(len(titles))
        tokens.append(chosen.tokens)
    knowledge.close()
    return hits / len(questions), statistics.mean(sections), statistics.mean(tokens), misses


def synthetic(folder: Path, count: int, rng: random.Random) -> None:
    """`count` sections of the example's vocabulary, ten to a file, under headings."""
    words = " ".join(path.read_text() for path in EXAMPLE.glob("*.md")).split()
    for file_number in range(-(-count // 10)):
        lines = []
        for number in range(min(10, count - file_number * 10)):
            lines.append(f"## {' '.join(rng.choices(words, k=3))} {number}")
            lines.append(" ".join(rng.choices(words, k=120)))
            lines.append("")
        (folder / f"file{file_number:04}.md").write_text("\n".join(lines))


def search_ms(count: int, repeats: int, rng: random.Random) -> float:
    """Median milliseconds one choose() takes over `count` sections (searched: a small budget)."""
    questions = [item["question"] for item in json.loads((EXAMPLE / "questions.json").read_text())]
    with tempfile.TemporaryDirectory() as folder:
        synthetic(Path(folder), count, rng)
        knowledge = Knowledge(Path(folder), 400, 10**7, reload_seconds=3600)
        assert knowledge.shelf.tokens > 400, "the synthetic knowledge must be searched, not whole"
        times = []
        for _ in range(repeats):
            for question in questions:
                started = time.perf_counter()
                knowledge.choose(question, "What are your opening hours?")
                times.append((time.perf_counter() - started) * 1000)
        knowledge.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one pass of everything, for CI")
    args = parser.parse_args()
    rng = random.Random(7)

    whole = Knowledge(EXAMPLE, 10**6, 10**7, reload_seconds=3600)
    whole_tokens = whole.shelf.tokens
    whole.close()
    print(f"examples/knowledge: {whole_tokens} tokens whole, in every prompt")
    print("budget  hit rate  sections/reply  tokens/reply  (BM25, 40 questions)")
    for budget in BUDGETS:
        rate, sections, tokens, misses = hit_rate(EXAMPLE, budget)
        print(f"{budget:6}  {rate:7.0%}  {sections:14.1f}  {tokens:12.0f}")
        for question in misses:
            print(f"        missed: {question}")
        if budget == BUDGETS[0] and rate < TARGET_HIT_RATE:
            print(f"        under the target of {TARGET_HIT_RATE:.0%}")

    print("sections  search ms (median)")
    for count in SIZES:
        ms = search_ms(count, 1 if args.quick else 5, rng)
        print(f"{count:8}  {ms:8.2f}{'  over the 5 ms target' if ms > TARGET_SEARCH_MS else ''}")


if __name__ == "__main__":
    main()
