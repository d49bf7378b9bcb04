"""`ubench leaderboard publish`: a build folder -> a Hub dataset repository, tagged v<version>.

The repository gets the table as Parquet (the dataset viewer's default config), CSV and JSON,
a dataset card, version.json, CHANGELOG.md and the offline page under site/. A version that
is already tagged is left alone, so publishing is idempotent. The token is read from HF_TOKEN
only and is masked out of every message and log record this module lets through.
`--target local:DIR` writes the same layout into DIR with the tags in DIR/tags.json (dry run);
it refuses a non-empty DIR that an earlier local publish did not create (no tags.json) unless
`force=True`, because it replaces DIR/data, DIR/site and DIR/README.md.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from common import atomic

TOKEN_VARIABLE = "HF_TOKEN"
MASK = "***"
REQUIRED_BUILD_FILES = ("version.json", "leaderboard.parquet", "leaderboard.csv", "leaderboard.json",
                        "CHANGELOG.md", "index.html")


class PublishError(RuntimeError):
    pass


@dataclass
class PublishResult:
    version: str
    tag: str
    published: bool  # False: that version was already tagged, nothing was sent
    message: str


def tag_name(version: str) -> str:
    return f"v{version}"


def redact(text: str, token: str | None) -> str:
    return text.replace(token, MASK) if token else text


class _RedactFilter(logging.Filter):
    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = redact(message, self.token), None
        return True


@contextlib.contextmanager
def _masked_logging(token: str | None) -> Iterator[None]:
    """Mask the token in every record passing the root handlers or the hub's own loggers."""
    if not token:
        yield
        return
    mask = _RedactFilter(token)
    loggers = [logging.getLogger(), logging.getLogger("huggingface_hub"), logging.getLogger("httpx")]
    handlers = {h for lg in loggers for h in lg.handlers}
    for target in [*loggers, *handlers]:
        target.addFilter(mask)
    try:
        yield
    finally:
        for target in [*loggers, *handlers]:
            target.removeFilter(mask)


def dataset_card(repo_id: str, record: dict[str, Any], changelog: str) -> str:
    header = {
        "pretty_name": "unlearn-bench leaderboard",
        "license": "mit",
        "tags": ["machine-unlearning", "llm", "leaderboard", "benchmark"],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": "train", "path": "data/leaderboard.parquet"}]}],
    }
    import yaml

    return (
        "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\n"
        f"# unlearn-bench leaderboard, version {record['version']}\n\n"
        f"Content hash `{record['content_hash']}` ({record['n_rows']} rows). One row per method "
        "(objective + rectifier + parametrization) and per reference model (target, retain) on each "
        "benchmark split and model: metric means over seeds with 95% t-intervals "
        "(`metric:<name>`, `metric:<name>:ci_low`, `metric:<name>:ci_high`), cost (`cost:*`), "
        "evaluator variant, provenance and status. Rows with `comparable = false` carry the reason "
        "in `flags` and are not ranked; `pareto_rank` 1 is the forget-versus-utility front.\n\n"
        "```python\nfrom datasets import load_dataset\n"
        f"table = load_dataset(\"{repo_id}\", revision=\"{tag_name(record['version'])}\")\n```\n\n"
        "Browse offline: download `site/` and open `site/index.html`.\n\n"
        + changelog.replace("# Changelog", "## Changelog", 1)
    )


def stage(build: Path, repo_id: str, into: Path) -> dict[str, Any]:
    """Lay out the repository content of one build in `into`; returns version.json's content."""
    missing = [name for name in REQUIRED_BUILD_FILES if not (build / name).is_file()]
    if missing:
        raise PublishError(f"--build {build} is not a leaderboard build (missing {', '.join(missing)}); "
                           "run `ubench leaderboard build` first")
    record = json.loads((build / "version.json").read_text(encoding="utf-8"))
    (into / "data").mkdir(parents=True, exist_ok=True)
    for name in ("leaderboard.parquet", "leaderboard.csv", "leaderboard.json"):
        shutil.copyfile(build / name, into / "data" / name)
    for name in ("version.json", "CHANGELOG.md"):
        shutil.copyfile(build / name, into / name)
    shutil.copytree(build, into / "site", ignore=shutil.ignore_patterns(
        "leaderboard.parquet", "leaderboard.csv", "version.json", "CHANGELOG.md"))
    changelog = (build / "CHANGELOG.md").read_text(encoding="utf-8")
    (into / "README.md").write_text(dataset_card(repo_id, record, changelog), encoding="utf-8")
    return record


def _check_local_folder(folder: Path, force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise PublishError(f"--target local:{folder}: exists and is not a folder")
    if force or not folder.exists() or (folder / "tags.json").is_file() or not any(folder.iterdir()):
        return
    raise PublishError(f"--target local:{folder}: the folder is not empty and was not created by "
                       "`ubench leaderboard publish` (no tags.json); publishing would replace its "
                       "data/, site/ and README.md. Choose an empty or new folder, or pass --force")


def _publish_local(build: Path, repo_id: str, folder: Path, force: bool = False) -> PublishResult:
    _check_local_folder(folder, force)
    tags_file = folder / "tags.json"
    tags = json.loads(tags_file.read_text(encoding="utf-8")) if tags_file.is_file() else {}
    version = json.loads((build / "version.json").read_text(encoding="utf-8"))["version"] \
        if (build / "version.json").is_file() else None
    if version is not None and tag_name(version) in tags:
        return PublishResult(version, tag_name(version), False,
                             f"{folder}: {tag_name(version)} already published; nothing to do")
    with tempfile.TemporaryDirectory() as tmp:
        record = stage(build, repo_id, Path(tmp))
        folder.mkdir(parents=True, exist_ok=True)
        for item in Path(tmp).iterdir():
            destination = folder / item.name
            if item.is_dir():
                with atomic.atomic_dir(destination) as staged:
                    shutil.copytree(item, staged, dirs_exist_ok=True)
            else:
                atomic.write_bytes(destination, item.read_bytes())
    tag = tag_name(record["version"])
    tags[tag] = {"content_hash": record["content_hash"], "repo": repo_id}
    atomic.write_json(tags_file, tags)
    return PublishResult(record["version"], tag, True, f"{folder}: published {repo_id} {tag}")


def _publish_hub(build: Path, repo_id: str, token: str) -> PublishResult:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        record = stage(build, repo_id, Path(tmp))
        tag = tag_name(record["version"])
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        existing = {ref.name for ref in api.list_repo_refs(repo_id, repo_type="dataset").tags}
        if tag in existing:
            return PublishResult(record["version"], tag, False,
                                 f"{repo_id}: {tag} already published; nothing to do")
        commit = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=tmp,
                                   commit_message=f"leaderboard {tag}",
                                   commit_description=f"content hash {record['content_hash']}")
        api.create_tag(repo_id, tag=tag, repo_type="dataset", revision=commit.oid,
                       tag_message=f"unlearn-bench leaderboard {tag} ({record['content_hash']})")
    return PublishResult(record["version"], tag, True, f"{repo_id}: published {tag} ({commit.oid})")


def publish(build: str | Path, repo_id: str, target: str = "hub", force: bool = False) -> PublishResult:
    """Publish one build; raises PublishError with a token-free message on any failure."""
    build = Path(build)
    if target.startswith("local:"):
        folder = target.split(":", 1)[1]
        if not folder:
            raise PublishError("--target local:DIR needs a folder, e.g. local:/tmp/hub-dry-run")
        return _publish_local(build, repo_id, Path(folder), force=force)
    if target != "hub":
        raise PublishError(f"--target {target!r}: use hub or local:DIR")
    token = os.environ.get(TOKEN_VARIABLE)
    if not token:
        raise PublishError(f"set {TOKEN_VARIABLE} in the environment to a Hub write token "
                           "(it is read from there only, never from the command line)")
    with _masked_logging(token):
        try:
            return _publish_hub(build, repo_id, token)
        except PublishError:
            raise
        except Exception as error:  # any hub/http failure: report it, but never with the token
            raise PublishError(f"publishing to {repo_id} failed: "
                               f"{redact(f'{type(error).__name__}: {error}', token)}") from None
