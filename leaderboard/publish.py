"""`ubench leaderboard publish`: a build folder -> a Hub dataset repository, tagged v<version>,
then a static Hugging Face Space that serves the page of that version.

The dataset repository gets the table as Parquet (the dataset viewer's default config), CSV and
JSON (and the metric meta-evaluation tables, data/metric_tables.json, when the build has them), a
dataset card, version.json, CHANGELOG.md and the offline page under site/. The Space
(`sdk: static`, default id = the dataset's id, since Spaces and datasets are separate namespaces)
gets the page alone: index.html naming "data: <dataset>@<tag>" with a link to the dataset at that
tag, assets/ and a README.md with the Space front matter; it is tagged v<version> too. Each step
leaves a version that is already tagged alone, so publishing is idempotent, and the dataset goes
first: if the Space step fails the dataset tag stands, and rerunning the same command retries the
Space only. The token is read from HF_TOKEN only and is masked out of every message and log record
this module lets through. `--target local:DIR` writes the same layout into DIR (the Space into
DIR/space/) with the tags in DIR/tags.json (dry run). It replaces DIR/data, DIR/site, DIR/space
and DIR/README.md, so it works only in a new or empty DIR or one it marked itself
(`publish_marker`: a file with its own content hash, written before anything is replaced, so a
killed publish is resumed by the rerun); any other non-empty DIR is refused unless `force=True`.
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
from leaderboard import metric_tables, page, publish_marker

TOKEN_VARIABLE = "HF_TOKEN"
MASK = "***"
REQUIRED_BUILD_FILES = ("version.json", "leaderboard.parquet", "leaderboard.csv", "leaderboard.json",
                        "CHANGELOG.md", "index.html", "assets/data.js", "assets/app.js")


class PublishError(RuntimeError):
    pass


@dataclass
class PublishResult:
    version: str
    tag: str
    published: bool  # False: that version was already tagged in the dataset, nothing was sent
    message: str
    space: str | None = None  # None: --no-space
    space_published: bool = False  # False: skipped, or that version was already tagged in the Space


def tag_name(version: str) -> str:
    return f"v{version}"


def default_space(repo_id: str) -> str:
    """The Space of a dataset `owner/name` is `owner/name` (spaces and datasets do not collide)."""
    return repo_id


def space_url(space_id: str) -> str:
    return f"{page.HUB}/spaces/{space_id}"


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


def dataset_card(repo_id: str, record: dict[str, Any], changelog: str, space_id: str | None = None) -> str:
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
        "in `flags` and are not ranked; `pareto_rank` 1 is the forget-versus-utility front. From "
        "table format 3 on, `utility_at_matched` (with `_ci_low`/`_ci_high`, `matched_status`, "
        "`matched_rank`) is the utility where a run first reaches the benchmark's matched forgetting "
        "level (`matched_metric`, `matched_level`, `matched_text`), `curve` the run's trajectory "
        "as JSON `[[step, forget, utility(, matched metric)], ...]`, and `forget_group`/`utility_group` are "
        "significance letters (rows sharing a letter do not differ at 95%).\n\n"
        + (f"`data/{metric_tables.BUILD_FILE}` is the metric meta-evaluation: per benchmark, every metric's "
           "faithfulness (AUC-ROC separating models that hold the forget knowledge from models that never "
           "saw it) and robustness (Q under quantization, R under relearning, their harmonic mean HM) with "
           "bootstrap intervals over models, the model pools and the replication checks.\n\n"
           if record.get("metric_tables_hash") else "")
        + "```python\nfrom datasets import load_dataset\n"
        f"table = load_dataset(\"{repo_id}\", revision=\"{tag_name(record['version'])}\")\n```\n\n"
        + (f"Browse online: [{space_id}]({space_url(space_id)}) (a static Space with the page). "
           if space_id else "")
        + "Browse offline: download `site/` and open `site/index.html`.\n\n"
        + changelog.replace("# Changelog", "## Changelog", 1)
    )


def space_card(space_id: str, repo_id: str, record: dict[str, Any]) -> str:
    """README.md of the Space: the front matter makes the Hub serve index.html as a static page."""
    import yaml

    tag = tag_name(record["version"])
    header = {
        "title": "unlearn-bench leaderboard",
        "emoji": "📉",
        "colorFrom": "blue",
        "colorTo": "green",
        "sdk": "static",
        "app_file": "index.html",
        "pinned": False,
        "license": "mit",
        "short_description": f"LLM unlearning leaderboard {tag}",
        "datasets": [repo_id],
        "tags": ["machine-unlearning", "llm", "leaderboard"],
    }
    return (
        "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n"
        f"# unlearn-bench leaderboard, version {record['version']}\n\n"
        f"The page of leaderboard {tag} (content hash `{record['content_hash']}`, "
        f"{record['n_rows']} rows). Data: [{repo_id}@{tag}]({page.dataset_tree_url(repo_id, tag)}); "
        f"this Space is tagged {tag} as well, so the files of this version stay at "
        f"{space_url(space_id)}/tree/{tag} after later versions replace the page.\n"
    )


def _stamped_index(build: Path, repo_id: str, tag: str) -> str:
    return page.stamp_data_source((build / "index.html").read_text(encoding="utf-8"), repo_id, tag)


def stage_space(build: Path, repo_id: str, space_id: str, record: dict[str, Any], into: Path) -> None:
    """Lay out the Space content of one build in `into`: the page (index.html + assets/) and its card."""
    check_build(build)
    tag = tag_name(record["version"])
    into.mkdir(parents=True, exist_ok=True)
    (into / "index.html").write_text(_stamped_index(build, repo_id, tag), encoding="utf-8")
    shutil.copytree(build / "assets", into / "assets")
    (into / "README.md").write_text(space_card(space_id, repo_id, record), encoding="utf-8")


def check_build(build: Path) -> None:
    missing = [name for name in REQUIRED_BUILD_FILES if not (build / name).is_file()]
    if missing:
        raise PublishError(f"--build {build} is not a leaderboard build (missing {', '.join(missing)}); "
                           "run `ubench leaderboard build` first")


def stage(build: Path, repo_id: str, into: Path, space_id: str | None = None) -> dict[str, Any]:
    """Lay out the repository content of one build in `into`; returns version.json's content."""
    check_build(build)
    record = json.loads((build / "version.json").read_text(encoding="utf-8"))
    (into / "data").mkdir(parents=True, exist_ok=True)
    for name in ("leaderboard.parquet", "leaderboard.csv", "leaderboard.json"):
        shutil.copyfile(build / name, into / "data" / name)
    if (build / metric_tables.BUILD_FILE).is_file():  # only builds from results with a meta-evaluation
        shutil.copyfile(build / metric_tables.BUILD_FILE, into / "data" / metric_tables.BUILD_FILE)
    for name in ("version.json", "CHANGELOG.md"):
        shutil.copyfile(build / name, into / name)
    shutil.copytree(build, into / "site", ignore=shutil.ignore_patterns(
        "leaderboard.parquet", "leaderboard.csv", "version.json", "CHANGELOG.md"))
    (into / "site" / "index.html").write_text(
        _stamped_index(build, repo_id, tag_name(record["version"])), encoding="utf-8")
    changelog = (build / "CHANGELOG.md").read_text(encoding="utf-8")
    (into / "README.md").write_text(dataset_card(repo_id, record, changelog, space_id), encoding="utf-8")
    return record


def _check_local_folder(folder: Path, force: bool) -> dict[str, Any]:
    """The tags already published in `folder` (empty for a new or empty folder, or with `force`);
    refuses a non-empty folder that carries no verified marker of an earlier local publish."""
    if folder.exists() and not folder.is_dir():
        raise PublishError(f"--target local:{folder}: exists and is not a folder")
    marker = publish_marker.read(folder) if folder.is_dir() else None
    if marker is not None:
        return marker["tags"]
    if force or not folder.exists() or not any(folder.iterdir()):
        return {}
    raise PublishError(f"--target local:{folder}: the folder is not empty and was not created by "
                       f"`ubench leaderboard publish` (no valid {publish_marker.NAME}; a tags.json alone "
                       "does not count); publishing would replace its data/, site/, space/ and "
                       "README.md. Choose an empty or new folder, or pass --force")


def _build_version(build: Path) -> str | None:
    file = build / "version.json"
    return json.loads(file.read_text(encoding="utf-8"))["version"] if file.is_file() else None


def _replace_local(staged_root: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for item in staged_root.iterdir():
        destination = folder / item.name
        if item.is_dir():
            with atomic.atomic_dir(destination) as staged:
                shutil.copytree(item, staged, dirs_exist_ok=True)
        else:
            atomic.write_bytes(destination, item.read_bytes())


def _publish_local(build: Path, repo_id: str, folder: Path, space_id: str | None,
                   force: bool = False) -> PublishResult:
    tags = _check_local_folder(folder, force)
    version = _build_version(build)
    tag = tag_name(version) if version is not None else None
    dataset_done = tag in tags
    space_done = space_id is None or (dataset_done and tags[tag].get("space") == space_id)
    if dataset_done and space_done:
        return PublishResult(version, tag, False, f"{folder}: {tag} already published; nothing to do",
                             space=space_id)
    with tempfile.TemporaryDirectory() as tmp:
        if not dataset_done:
            record = stage(build, repo_id, Path(tmp), space_id)
        else:  # the dataset tag stands; only the space is (re)written
            record = json.loads((build / "version.json").read_text(encoding="utf-8"))
        if not space_done:
            stage_space(build, repo_id, space_id, record, Path(tmp) / "space")
        tag = tag_name(record["version"])
        folder.mkdir(parents=True, exist_ok=True)
        # marked before anything is replaced: a publish killed from here on is resumed by the rerun
        publish_marker.write(folder, tags, pending=tag)
        _replace_local(Path(tmp), folder)
    entry = tags.get(tag, {"content_hash": record["content_hash"], "repo": repo_id})
    if space_id is not None:
        entry["space"] = space_id
    tags[tag] = entry
    atomic.write_json(folder / "tags.json", tags)  # the readable list; the marker is what counts
    publish_marker.write(folder, tags, pending=None)
    message = f"{folder}: " + (f"{tag} already published in {repo_id}" if dataset_done
                               else f"published {repo_id} {tag}")
    if space_id is not None:
        message += f"; Space {space_id} -> {folder / 'space'}"
    return PublishResult(record["version"], tag, not dataset_done, message, space=space_id,
                         space_published=not space_done)


def _tags(api: Any, repo_id: str, repo_type: str) -> set[str]:
    return {ref.name for ref in api.list_repo_refs(repo_id, repo_type=repo_type).tags}


def _upload_and_tag(api: Any, repo_id: str, repo_type: str, folder: str, record: dict[str, Any]) -> str:
    """One commit with the folder's content, then the version tag on that commit; returns its id."""
    tag = tag_name(record["version"])
    commit = api.upload_folder(repo_id=repo_id, repo_type=repo_type, folder_path=folder,
                               commit_message=f"leaderboard {tag}",
                               commit_description=f"content hash {record['content_hash']}")
    api.create_tag(repo_id, tag=tag, repo_type=repo_type, revision=commit.oid,
                   tag_message=f"unlearn-bench leaderboard {tag} ({record['content_hash']})")
    return commit.oid


def _publish_dataset(api: Any, build: Path, repo_id: str,
                     space_id: str | None) -> tuple[PublishResult, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        record = stage(build, repo_id, Path(tmp), space_id)
        tag = tag_name(record["version"])
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        if tag in _tags(api, repo_id, "dataset"):
            return PublishResult(record["version"], tag, False,
                                 f"{repo_id}: {tag} already published; nothing to do"), record
        oid = _upload_and_tag(api, repo_id, "dataset", tmp, record)
    return PublishResult(record["version"], tag, True, f"{repo_id}: published {tag} ({oid})"), record


def _publish_space(api: Any, build: Path, repo_id: str, space_id: str, record: dict[str, Any]) -> tuple[bool, str]:
    tag = tag_name(record["version"])
    api.create_repo(space_id, repo_type="space", space_sdk="static", exist_ok=True)
    if tag in _tags(api, space_id, "space"):
        return False, f"Space {space_id}: {tag} already published; nothing to do"
    with tempfile.TemporaryDirectory() as tmp:
        stage_space(build, repo_id, space_id, record, Path(tmp))
        oid = _upload_and_tag(api, space_id, "space", tmp, record)
    return True, f"Space {space_id}: published {tag} ({oid}), {space_url(space_id)}"


def _hub_failure(error: Exception, token: str) -> str:
    return redact(f"{type(error).__name__}: {error}", token)


def _publish_hub(build: Path, repo_id: str, token: str, space_id: str | None) -> PublishResult:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        result, record = _publish_dataset(api, build, repo_id, space_id)
    except PublishError:
        raise
    except Exception as error:  # any hub/http failure: report it, but never with the token
        raise PublishError(f"publishing to {repo_id} failed: {_hub_failure(error, token)}"
                           + ("; the Space was not touched" if space_id else "")) from None
    if space_id is None:
        return result
    try:
        space_published, space_message = _publish_space(api, build, repo_id, space_id, record)
    except Exception as error:
        state = "was published now" if result.published else "was already published"
        raise PublishError(
            f"updating the Space {space_id} failed: {_hub_failure(error, token)}. The dataset "
            f"{repo_id} {result.tag} {state} and stays as it is; rerun the same command to retry the "
            "Space only (the dataset step is a no-op once its tag exists), or pass --no-space to "
            "skip the Space") from None
    return PublishResult(result.version, result.tag, result.published,
                         f"{result.message}\n{space_message}", space=space_id,
                         space_published=space_published)


def publish(build: str | Path, repo_id: str, target: str = "hub", force: bool = False,
            space: str | None = None, no_space: bool = False) -> PublishResult:
    """Publish one build (dataset, then Space); raises PublishError with a token-free message.

    `space` defaults to `default_space(repo_id)`; `no_space=True` publishes the dataset only.
    """
    build = Path(build)
    space_id = None if no_space else (space or default_space(repo_id))
    if target.startswith("local:"):
        folder = target.split(":", 1)[1]
        if not folder:
            raise PublishError("--target local:DIR needs a folder, e.g. local:/tmp/hub-dry-run")
        return _publish_local(build, repo_id, Path(folder), space_id, force=force)
    if target != "hub":
        raise PublishError(f"--target {target!r}: use hub or local:DIR")
    token = os.environ.get(TOKEN_VARIABLE)
    if not token:
        raise PublishError(f"set {TOKEN_VARIABLE} in the environment to a Hub write token "
                           "(it is read from there only, never from the command line)")
    with _masked_logging(token):
        return _publish_hub(build, repo_id, token, space_id)
