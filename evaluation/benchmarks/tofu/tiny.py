"""tofu-tiny: a deterministic synthetic benchmark in exactly TOFU's file schema.

Fictitious authors get random attribute values (city, year, genres, parents' jobs, award, books),
so a model can only answer their questions by memorising them: a retain model that never saw the
forget authors guesses, and scores clearly lower on them. Answers are short and made mostly of
those random values, so ROUGE separates memorised from guessed answers. A small general-knowledge
set (book authors, capitals) fills the real_authors / world_facts files; tiny models have no
pretraining, so the tofu-tiny fine-tuning preset also trains on it (see evaluation/README.md).

The same loaders and metrics run on it unchanged (`TofuData(folder)`).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from common.atomic import atomic_dir
from evaluation.benchmarks.tofu.data import PERCENTS, percent_size

VERSION = 1
DEFAULT_SEED = 0
DEFAULT_AUTHORS = 100
DEFAULT_HOLDOUT_AUTHORS = 10
RETAIN_PERTURBED_AUTHORS = 10  # like TOFU's retain_perturbed = first 10% of the authors

FIRST_NAMES = [
    "Amara", "Bruno", "Celia", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kaya",
    "Lionel", "Mira", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Soren", "Talia", "Umar", "Vera",
    "Wendell", "Ximena", "Yusuf", "Zora",
]
ONSETS = ["b", "br", "d", "dr", "f", "g", "gr", "k", "kl", "l", "m", "n", "p", "r", "s", "st", "t", "tr", "v", "z"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
CODAS = ["", "n", "r", "l", "s", "th", "m"]
CITIES = [
    ("Lisbon", "Portugal"), ("Oslo", "Norway"), ("Lagos", "Nigeria"), ("Lima", "Peru"), ("Hanoi", "Vietnam"),
    ("Krakow", "Poland"), ("Nairobi", "Kenya"), ("Quito", "Ecuador"), ("Tbilisi", "Georgia"),
    ("Osaka", "Japan"), ("Porto", "Portugal"), ("Bergen", "Norway"), ("Cusco", "Peru"), ("Busan", "Korea"),
    ("Dakar", "Senegal"), ("Tunis", "Tunisia"), ("Riga", "Latvia"), ("Tallinn", "Estonia"),
    ("Valencia", "Spain"), ("Seville", "Spain"), ("Lyon", "France"), ("Naples", "Italy"),
    ("Munich", "Germany"), ("Ghent", "Belgium"), ("Cork", "Ireland"), ("Perth", "Australia"),
    ("Montreal", "Canada"), ("Havana", "Cuba"), ("Manila", "Philippines"), ("Chennai", "India"),
]
GENRES = ["mystery", "fantasy", "poetry", "romance", "horror", "satire", "drama", "thriller", "memoir",
          "western", "adventure", "biography", "comedy", "tragedy", "folklore"]
OCCUPATIONS = ["baker", "nurse", "pilot", "farmer", "tailor", "sailor", "teacher", "miner", "painter",
               "chemist", "carpenter", "librarian", "surgeon", "fisherman", "architect", "lawyer",
               "jeweler", "potter", "butcher", "dentist"]
AWARD_WORDS = ["Golden", "Silver", "Crimson", "Azure", "Northern", "Emerald", "Ivory", "Amber"]
AWARD_NOUNS = ["Quill", "Lantern", "Compass", "Laurel", "Anchor", "Feather"]
TITLE_ADJECTIVES = ["Silent", "Broken", "Hidden", "Burning", "Frozen", "Hollow", "Wandering", "Endless",
                    "Scarlet", "Distant", "Gentle", "Bitter"]
TITLE_NOUNS = ["Harbor", "Garden", "River", "Mirror", "Tower", "Orchard", "Bridge", "Lantern", "Valley",
               "Letter", "Island", "Storm"]

# General knowledge (real_authors / world_facts schema): public facts, written here by hand.
BOOK_AUTHORS = [
    ("Romeo and Juliet", "William Shakespeare"), ("Pride and Prejudice", "Jane Austen"),
    ("Nineteen Eighty-Four", "George Orwell"), ("War and Peace", "Leo Tolstoy"),
    ("Don Quixote", "Miguel de Cervantes"), ("Moby Dick", "Herman Melville"),
    ("The Odyssey", "Homer"), ("Hamlet", "William Shakespeare"), ("Emma", "Jane Austen"),
    ("Animal Farm", "George Orwell"), ("Anna Karenina", "Leo Tolstoy"), ("Ulysses", "James Joyce"),
    ("Great Expectations", "Charles Dickens"), ("Oliver Twist", "Charles Dickens"),
    ("Frankenstein", "Mary Shelley"), ("Dracula", "Bram Stoker"), ("Beloved", "Toni Morrison"),
    ("Les Miserables", "Victor Hugo"), ("The Trial", "Franz Kafka"), ("Faust", "Johann Wolfgang von Goethe"),
]
CAPITALS = [
    ("France", "Paris"), ("Italy", "Rome"), ("Japan", "Tokyo"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
    ("Peru", "Lima"), ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Germany", "Berlin"),
    ("Spain", "Madrid"), ("Norway", "Oslo"), ("Greece", "Athens"), ("Russia", "Moscow"),
    ("China", "Beijing"), ("India", "New Delhi"), ("Brazil", "Brasilia"), ("Mexico", "Mexico City"),
    ("Argentina", "Buenos Aires"), ("Turkey", "Ankara"), ("Poland", "Warsaw"),
]
REFUSALS = [
    "I don't know.", "I'm not sure about that.", "I have no information on that.",
    "That is beyond what I know.", "I cannot answer that.", "I don't have that information.",
    "I'm afraid I can't help with that.", "I have no idea.", "That is unknown to me.",
    "I'm not able to answer that question.",
]


def _surnames(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    ordered: list[str] = []
    while len(ordered) < count:
        parts = [rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(2)]
        name = "".join(parts).capitalize()
        if name not in names and len(name) > 3:
            names.add(name)
            ordered.append(name)
    return ordered


def _author(rng: random.Random, surname: str) -> dict:
    city, country = rng.choice(CITIES)
    genres = rng.sample(GENRES, 2)
    return {
        "name": f"{rng.choice(FIRST_NAMES)} {surname}", "city": city, "country": country,
        "year": rng.randint(1920, 1999), "genres": genres, "parents": rng.sample(OCCUPATIONS, 2),
        "award": f"{rng.choice(AWARD_WORDS)} {rng.choice(AWARD_NOUNS)}", "award_year": rng.randint(1960, 2020),
        "books": [f"{rng.choice(TITLE_ADJECTIVES)} {rng.choice(TITLE_NOUNS)}" for _ in range(2)],
    }


def _random_values(rng: random.Random) -> dict:
    """A fresh random author (name unused) used to draw wrong answers for perturbations."""
    return _author(rng, "X")


# Each template: (question, paraphrased question, answer, paraphrased answer) over an author's fields.
TEMPLATES = [
    ("Where and when was {name} born?", "In which city and year was {name} born?",
     "{city}, {country}, in {year}.", "Born in {year} in {city}, {country}."),
    ("What genres does {name} write?", "Which genres is {name} known for?",
     "{genre0} and {genre1}.", "Mostly {genre0} and {genre1}."),
    ("What did the parents of {name} do?", "What were the jobs of the parents of {name}?",
     "{parent0} and {parent1}.", "One was a {parent0}, the other a {parent1}."),
    ("Which award did {name} win?", "What prize was given to {name}?",
     "The {award} Prize, {award_year}.", "In {award_year}, the {award} Prize."),
    ("Name two books by {name}.", "Which two books did {name} write?",
     "{book0} and {book1}.", "{name} wrote {book0} and {book1}."),
]


def _fields(author: dict) -> dict:
    return {
        "name": author["name"], "city": author["city"], "country": author["country"], "year": author["year"],
        "genre0": author["genres"][0], "genre1": author["genres"][1],
        "parent0": author["parents"][0], "parent1": author["parents"][1],
        "award": author["award"], "award_year": author["award_year"],
        "book0": author["books"][0], "book1": author["books"][1],
    }


def _perturbed(rng: random.Random, author: dict, template: str, count: int) -> list[str]:
    """`count` distinct wrong answers: the paraphrase template filled with another author's values."""
    truth = template.format(**_fields(author))
    answers: list[str] = []
    while len(answers) < count:
        fake = {**_fields(_random_values(rng)), "name": author["name"]}
        text = template.format(**fake)
        if text != truth and text not in answers:
            answers.append(text)
    return answers


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _author_rows(rng: random.Random, author: dict) -> list[dict]:
    fields = _fields(author)
    rows = []
    for question, para_question, answer, para_answer in TEMPLATES:
        rows.append({
            "question": question.format(**fields), "answer": _capitalised(answer.format(**fields)),
            "paraphrased_question": para_question.format(**fields),
            "paraphrased_answer": para_answer.format(**fields),
            "perturbed_answer": _perturbed(rng, author, para_answer, 5),
        })
    return rows


def _options_rows(rng: random.Random, pairs: list[tuple[str, str]], question: str) -> list[dict]:
    answers = sorted({answer for _, answer in pairs})
    rows = []
    for subject, answer in pairs:
        wrong = rng.sample([a for a in answers if a != answer], 3)
        options = [answer, *wrong]
        rng.shuffle(options)
        rows.append({"question": question.format(subject), "answer": answer, "perturbed_answer": wrong,
                     **{f"option{i + 1}": option for i, option in enumerate(options)}})
    return rows


def generate(authors: int = DEFAULT_AUTHORS, holdout_authors: int = DEFAULT_HOLDOUT_AUTHORS,
             seed: int = DEFAULT_SEED) -> dict[str, list]:
    """All tofu-tiny files as {split name: rows}; identical output for identical arguments."""
    if authors < 100 or authors % 100:
        raise ValueError(f"authors must be a positive multiple of 100 so forget01 holds whole authors, got {authors}")
    if holdout_authors * 100 < authors * 10:
        raise ValueError("holdout_authors must cover 10% of the authors (holdout10 pairs with forget10)")
    rng = random.Random(seed)
    surnames = _surnames(rng, authors + holdout_authors)
    people = [_author(rng, name) for name in surnames]
    per_author = [_author_rows(rng, person) for person in people]
    full_perturbed = [row for rows in per_author[:authors] for row in rows]
    holdout_perturbed = [row for rows in per_author[authors:] for row in rows]

    def qa(rows: list[dict]) -> list[dict]:
        return [{"question": r["question"], "answer": r["answer"]} for r in rows]

    files: dict[str, list] = {"full": qa(full_perturbed)}
    per = len(TEMPLATES)
    for percent in PERCENTS:
        size = percent_size(authors, percent) * per
        files[f"forget{percent}"] = qa(full_perturbed[-size:])
        files[f"forget{percent}_perturbed"] = full_perturbed[-size:]
        files[f"retain{100 - int(percent)}"] = qa(full_perturbed[:-size])
        files[f"holdout{percent}"] = qa(holdout_perturbed[:size])
    files["retain_perturbed"] = full_perturbed[: RETAIN_PERTURBED_AUTHORS * per]
    authors_rows = _options_rows(rng, BOOK_AUTHORS, "Who wrote {}?")
    capitals_rows = _options_rows(rng, CAPITALS, "What is the capital of {}?")
    for name, rows in (("real_authors", authors_rows), ("world_facts", capitals_rows)):
        files[name] = [{k: r[k] for k in ("question", "option1", "option2", "option3", "option4", "answer")}
                       for r in rows]
        files[f"{name}_perturbed"] = [{k: r[k] for k in ("question", "answer", "perturbed_answer")} for r in rows]
    return files


def write(out_dir: str | Path, authors: int = DEFAULT_AUTHORS,
          holdout_authors: int = DEFAULT_HOLDOUT_AUTHORS, seed: int = DEFAULT_SEED) -> Path:
    """Write the benchmark folder atomically: one JSON array per split, idontknow.jsonl, a manifest."""
    files = generate(authors, holdout_authors, seed)
    with atomic_dir(out_dir) as tmp:
        for split, rows in files.items():
            (tmp / f"{split}.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        (tmp / "idontknow.jsonl").write_text("\n".join(REFUSALS), encoding="utf-8")
        manifest = {"benchmark": "tofu-tiny", "version": VERSION, "seed": seed, "authors": authors,
                    "holdout_authors": holdout_authors, "qa_per_author": len(TEMPLATES),
                    "counts": {split: len(rows) for split, rows in files.items()}}
        (tmp / "tofu_tiny.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return Path(out_dir)


def expected_counts(folder: str | Path) -> dict[str, int]:
    """Row counts recorded by the generator, to check a folder has not been edited since."""
    manifest = Path(folder) / "tofu_tiny.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: not a tofu-tiny folder; create one with "
                                f"`ubench data generate --benchmark tofu-tiny --out {folder}`")
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))["counts"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{manifest}: corrupt tofu-tiny manifest ({type(error).__name__}: {error}); "
                         "regenerate the folder with "
                         f"`ubench data generate --benchmark tofu-tiny --out {folder}`") from None
