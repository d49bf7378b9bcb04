"""muse-tiny: a deterministic synthetic MUSE corpus in MUSE's exact file layout.

Fictional news articles (invented towns, people, councils, projects, costs, months) split into
forget / retain1 / retain2 / holdout corpora, so a model can only state their facts by having
read them. A tiny Llama trained from scratch cannot pull a fact out of prose for an unseen
question format, so every article closes with one Question/Answer line stating its key fact in
exactly the KnowMem prompt's words: KnowMem on muse-tiny measures whether that line is still
recalled (the 10-shot ICL prefix is kept, as MUSE builds it). VerbMem items cut forget articles
into prompt / gt; PrivLeak texts are whole articles (forget, retain2, holdout). The target is
trained on forget + retain1 + retain2, the retrained reference on retain1 + retain2 (retain2 holds
the KnowMem-retain facts, so both models should know them).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from common.atomic import atomic_dir

VERSION = 1
DEFAULT_SEED = 0
DEFAULT_ARTICLES = 20      # scored articles per corpus (KnowMem / VerbMem / PrivLeak items)
ICL_SHOTS = 10             # MUSE's few-shot prefix size
MANIFEST = "muse_tiny.json"

ONSETS = ["b", "br", "d", "dr", "f", "g", "gr", "k", "kl", "l", "m", "n", "p", "r", "s", "st", "t", "tr", "v", "z"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
CODAS = ["", "n", "r", "l", "s", "th", "m"]
PROJECTS = ["water plant", "rail bridge", "public library", "ferry terminal", "wind farm", "night market",
            "football stadium", "art museum", "bus depot", "flood barrier", "science park", "city hospital",
            "tram line", "concert hall", "fishing harbour", "solar field"]
BODIES = ["council", "harbour board", "trade union", "mayor's office", "planning board", "chamber of commerce"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MOODS = ["bold", "costly", "welcome", "overdue", "risky", "historic", "modest", "strange"]
QUESTION_KINDS = ("lead", "cost", "open", "body")
FILES = ("raw/forget", "raw/retain1", "raw/retain2", "raw/holdout", "knowmem/forget_qa", "knowmem/forget_qa_icl",
         "knowmem/retain_qa", "knowmem/retain_qa_icl", "verbmem/forget", "privleak/forget", "privleak/retain",
         "privleak/holdout")  # every file `generate` writes, each counted in the manifest


@dataclass(frozen=True)
class Article:
    town: str
    project: str
    body: str
    leader: str
    speaker: str
    cost: int
    month: str
    day: str
    mood: str
    kind: str  # which fact the closing Question/Answer line states

    def question_answers(self) -> dict[str, dict[str, str]]:
        where = f"the new {self.project} in {self.town}"
        return {
            "lead": {"question": f"Who will lead {where}?", "answer": self.leader},
            "cost": {"question": f"How much will {where} cost?", "answer": f"{self.cost} million crowns"},
            "open": {"question": f"When will {where} open?", "answer": self.month},
            "body": {"question": f"Which group announced {where}?", "answer": f"the {self.town} {self.body}"},
        }

    def question_answer(self) -> dict[str, str]:
        return self.question_answers()[self.kind]

    def prose(self) -> str:
        return (f"{self.town} , {self.day} . The {self.town} {self.body} said on {self.day} that {self.leader} "
                f"will lead the new {self.project} . The {self.project} will cost {self.cost} million crowns "
                f"and open in {self.month} . {self.speaker} , who spoke for the {self.body} , called it a "
                f"{self.mood} step for {self.town} .")

    def text(self) -> str:
        """The prose, then one Question/Answer line restating its key fact in the KnowMem prompt's
        words; the document ends right after the answer."""
        qa = self.question_answer()
        return f"{self.prose()}\nQuestion: {qa['question']}\nAnswer: {qa['answer']}"


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables)).capitalize()


def _unique(rng: random.Random, used: set[str], make) -> str:
    while True:
        value = make()
        if value not in used:
            used.add(value)
            return value


def articles(count: int, seed: int) -> list[Article]:
    """`count` articles with distinct towns and people; each (town, project) pair is unique."""
    rng = random.Random(f"muse-tiny-{seed}")
    used: set[str] = set()
    out = []
    for index in range(count):
        town = _unique(rng, used, lambda: _word(rng, 2))
        leader = _unique(rng, used, lambda: f"{_word(rng, 2)} {_word(rng, 2)}")
        speaker = _unique(rng, used, lambda: f"{_word(rng, 2)} {_word(rng, 2)}")
        out.append(Article(town, rng.choice(PROJECTS), rng.choice(BODIES), leader, speaker,
                           rng.randint(2, 99), rng.choice(MONTHS), rng.choice(DAYS), rng.choice(MOODS),
                           QUESTION_KINDS[index % len(QUESTION_KINDS)]))
    return out


def verbmem_item(article: Article) -> dict[str, str]:
    """prompt = the article up to its second sentence end, gt = the rest (like MUSE's prefix/suffix cut)."""
    words = article.text().split(" ")
    stops = [i for i, w in enumerate(words) if w == "."]
    cut = stops[1] + 1
    return {"prompt": " ".join(words[:cut]), "gt": " ".join(words[cut:])}


def generate(n: int = DEFAULT_ARTICLES, seed: int = DEFAULT_SEED) -> dict[str, list]:
    """Every MUSE file of the tiny twin. forget and retain2 hold n scored articles plus ICL_SHOTS
    more whose Question/Answer lines form the few-shot prefix (trained on like the rest of their
    corpus: an ICL line of unseen words derails a tiny model); retain1 and holdout hold n.
    KnowMem-forget asks about forget, KnowMem-retain about retain2 (read by both the target and
    the retrained reference)."""
    if n < 2:
        raise ValueError(f"muse-tiny needs at least 2 articles per corpus, got {n}")
    per = n + ICL_SHOTS
    pool = articles(2 * per + 2 * n, seed)
    forget, retain2 = pool[:per], pool[per:2 * per]
    retain1, holdout = pool[2 * per:2 * per + n], pool[2 * per + n:]
    return {
        "raw/forget": [a.text() for a in forget],
        "raw/retain1": [a.text() for a in retain1],
        "raw/retain2": [a.text() for a in retain2],
        "raw/holdout": [a.text() for a in holdout],
        "knowmem/forget_qa": [a.question_answer() for a in forget[:n]],
        "knowmem/forget_qa_icl": [a.question_answer() for a in forget[n:]],
        "knowmem/retain_qa": [a.question_answer() for a in retain2[:n]],
        "knowmem/retain_qa_icl": [a.question_answer() for a in retain2[n:]],
        "verbmem/forget": [verbmem_item(a) for a in forget[:n]],
        "privleak/forget": [a.text() for a in forget[:n]],
        "privleak/retain": [a.text() for a in retain2[:n]],
        "privleak/holdout": [a.text() for a in holdout],
    }


def write(out_dir: str | Path, n: int = DEFAULT_ARTICLES, seed: int = DEFAULT_SEED) -> Path:
    """Write the corpus folder atomically (one JSON list per file) with a manifest of the counts."""
    files = generate(n, seed)
    with atomic_dir(out_dir) as tmp:
        for name, rows in files.items():
            path = tmp / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rows, ensure_ascii=False, indent=0), encoding="utf-8")
        manifest = {"benchmark": "muse-tiny", "version": VERSION, "seed": seed, "articles": n,
                    "icl_shots": ICL_SHOTS, "counts": {name: len(rows) for name, rows in files.items()}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return Path(out_dir)


def expected_counts(folder: str | Path) -> dict[str, int]:
    """Row counts recorded by the generator, so an edited folder fails validation; a manifest that
    is not UTF-8 JSON or lacks a file's count is refused (a missing count would skip that check)."""
    from evaluation.benchmarks import data_files
    from evaluation.benchmarks.muse.data import MuseDataError

    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: not a muse-tiny folder; create one with "
                                f"`ubench data generate --benchmark muse-tiny --out {folder}`")
    content, fix = data_files.read_manifest(manifest, "muse-tiny", folder, MuseDataError)
    counts = content.get("counts")
    if not isinstance(counts, dict):
        raise MuseDataError(f"{manifest}: incomplete muse-tiny manifest (no \"counts\" object); {fix}")
    missing = [name for name in FILES if name not in counts]
    bad = [name for name, value in counts.items() if isinstance(value, bool) or not isinstance(value, int) or value < 0]
    if missing or bad:
        raise MuseDataError(f"{manifest}: incomplete muse-tiny manifest (counts missing for {missing}, not a "
                            f"row count for {bad}); {fix}")
    return counts
