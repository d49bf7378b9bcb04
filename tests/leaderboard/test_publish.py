"""Publishing through the real huggingface_hub client over a mocked HTTP transport (offline)."""
from __future__ import annotations

import base64
import json
import logging

import httpx2
import huggingface_hub
import pytest
import yaml

from tests.leaderboard import lb_synthetic as syn
from leaderboard import build, publish
from workflows.cli import main as ubench

REPO = "someone/unlearn-bench"
SPACE = REPO  # the default Space id of a dataset
FAKE_TOKEN = "hf_FAKEtoken1234567890abcdefSECRET"


class FakeHub:
    """Answers the Hub API endpoints the client calls for datasets and Spaces; records every request."""

    def __init__(self, fail_on: str | None = None, space: str = SPACE):
        self.space = space
        self.requests: list[tuple[str, str]] = []
        self.created: list[dict] = []  # /api/repos/create payloads
        self.tags: dict[str, list[str]] = {"datasets": [], "spaces": []}
        self.commits: dict[str, int] = {"datasets": 0, "spaces": 0}
        self.files: dict[str, dict[str, bytes]] = {"datasets": {}, "spaces": {}}  # last commit's files
        self.fail_on = fail_on

    @property
    def uploaded(self) -> list[str]:
        return sorted(self.files["datasets"])

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path, method = request.url.path, request.method
        self.requests.append((method, path))
        assert request.headers.get("authorization") == f"Bearer {FAKE_TOKEN}" or path == "/api/agent-harnesses"
        if self.fail_on and self.fail_on in path:
            # A server that echoes the credential back: the message must still come out masked.
            return httpx2.Response(400, json={"error": f"bad request for token {FAKE_TOKEN}"})
        if path == "/api/agent-harnesses":
            return httpx2.Response(404, json={"error": "not found"})
        if path == "/api/validate-yaml":  # the client checks a README's YAML header
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        if path == "/api/repos/create":
            payload = json.loads(request.content)
            self.created.append(payload)
            prefix = {"dataset": "datasets/", "space": "spaces/"}.get(payload.get("type"), "")
            return httpx2.Response(200, json={
                "url": f"https://huggingface.co/{prefix}{payload['organization']}/{payload['name']}"})
        for kind, repo in (("datasets", REPO), ("spaces", self.space)):
            base = f"/api/{kind}/{repo}"
            if path == f"{base}/refs":
                return httpx2.Response(200, json={
                    "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": "0" * 40}],
                    "converts": [],
                    "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": "1" * 40}
                             for t in self.tags[kind]]})
            if path == f"{base}/preupload/main":
                files = json.loads(request.content)["files"]
                return httpx2.Response(200, json={"files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
            if path == f"{base}/commit/main":
                self.commits[kind] += 1
                lines = [json.loads(line) for line in request.content.decode().splitlines() if line]
                self.files[kind] = {l["value"]["path"]: base64.b64decode(l["value"]["content"])
                                    for l in lines if l.get("key") == "file"}
                oid = f"{self.commits['datasets'] + self.commits['spaces']:040x}"
                return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/{repo}/commit/{oid}",
                                                  "commitOid": oid})
            if path.startswith(f"{base}/tag/"):
                self.tags[kind].append(json.loads(request.content)["tag"])
                return httpx2.Response(200, json={})
        return httpx2.Response(404, json={"error": f"unexpected {method} {path}"})


@pytest.fixture
def hub(monkeypatch):
    fake = FakeHub()
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield fake
    huggingface_hub.set_client_factory(httpx2.Client)


@pytest.fixture
def site(tmp_path):
    syn.demo_grid(tmp_path / "results", seeds=(0,))
    build.build([tmp_path / "results"], tmp_path / "site")
    return tmp_path / "site"


def _writes(fake: FakeHub) -> list[tuple[str, str]]:
    return [r for r in fake.requests if r[0] == "POST" and ("/commit/" in r[1] or "/tag/" in r[1])]


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_publish_uploads_and_tags_then_is_a_no_op(hub, site):
    first = publish.publish(site, REPO)
    assert first.published and first.tag == "v1.0.0"
    assert first.space == SPACE and first.space_published
    assert hub.tags == {"datasets": ["v1.0.0"], "spaces": ["v1.0.0"]}
    assert hub.commits == {"datasets": 1, "spaces": 1}
    assert {"README.md", "data/leaderboard.parquet", "site/index.html", "site/assets/data.js",
            "version.json", "CHANGELOG.md"} <= set(hub.uploaded)
    # the dataset repo first, then the Space, created as a static one
    assert [(c["type"], c["name"]) for c in hub.created] == [("dataset", "unlearn-bench"), ("space", "unlearn-bench")]
    assert hub.created[1]["sdk"] == "static" and hub.created[1]["organization"] == "someone"
    writes = _writes(hub)
    assert [w[1].split("/")[2] for w in writes] == ["datasets", "datasets", "spaces", "spaces"]
    writes_before = len(writes)
    second = publish.publish(site, REPO)
    assert not second.published and not second.space_published and "already published" in second.message
    assert len(_writes(hub)) == writes_before and hub.commits == {"datasets": 1, "spaces": 1}


def test_space_serves_the_page_of_the_tag(hub, site):
    publish.publish(site, REPO)
    files = hub.files["spaces"]
    assert set(files) == {"README.md", "index.html", "assets/app.js", "assets/style.css", "assets/data.js"}
    header = _front_matter(files["README.md"].decode())
    assert header["sdk"] == "static" and header["app_file"] == "index.html"
    assert header["title"] and header["datasets"] == [REPO] and len(header["short_description"]) <= 60
    index = files["index.html"].decode()
    link = f'href="https://huggingface.co/datasets/{REPO}/tree/v1.0.0"'
    assert link in index and f"data: <a {link}" in index and f">{REPO}@v1.0.0</a>" in index
    assert files["assets/data.js"] == (site / "assets" / "data.js").read_bytes()
    assert link in hub.files["datasets"]["site/index.html"].decode()  # the dataset's copy names it too
    assert "data-source" not in (site / "index.html").read_text()  # the build itself names no tag
    card = hub.files["datasets"]["README.md"].decode()
    assert f"(https://huggingface.co/spaces/{SPACE})" in card  # the dataset card points at the Space


def test_space_option_and_no_space(monkeypatch, site):
    fake = FakeHub(space="someone/lb")
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    try:
        result = publish.publish(site, REPO, no_space=True)
        assert result.space is None and fake.commits == {"datasets": 1, "spaces": 0}
        assert [c["type"] for c in fake.created] == ["dataset"] and fake.tags["spaces"] == []
        # later, the Space alone under another id: the dataset step is a no-op (its tag exists)
        again = publish.publish(site, REPO, space="someone/lb")
    finally:
        huggingface_hub.set_client_factory(httpx2.Client)
    assert not again.published and again.space_published and again.space == "someone/lb"
    assert (fake.created[-1]["type"], fake.created[-1]["name"]) == ("space", "lb")
    assert fake.commits == {"datasets": 1, "spaces": 1} and fake.tags["spaces"] == ["v1.0.0"]
    assert "https://huggingface.co/spaces/someone/lb" in again.message


def test_a_failing_space_leaves_the_dataset_tag_and_a_rerun_retries_it(monkeypatch, site):
    fake = FakeHub(fail_on=f"/api/spaces/{SPACE}/commit/")
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    try:
        with pytest.raises(publish.PublishError) as raised:
            publish.publish(site, REPO)
        message = str(raised.value)
        assert f"updating the Space {SPACE} failed" in message
        assert f"dataset {REPO} v1.0.0 was published now" in message and "rerun the same command" in message
        assert FAKE_TOKEN not in message and "***" in message
        assert fake.tags == {"datasets": ["v1.0.0"], "spaces": []}
        fake.fail_on = None
        result = publish.publish(site, REPO)
        assert not result.published and result.space_published
        assert fake.commits == {"datasets": 1, "spaces": 1} and fake.tags["spaces"] == ["v1.0.0"]
    finally:
        huggingface_hub.set_client_factory(httpx2.Client)


def test_a_failing_dataset_never_touches_the_space(monkeypatch, site):
    fake = FakeHub(fail_on=f"/api/datasets/{REPO}/commit/")
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    try:
        with pytest.raises(publish.PublishError, match="the Space was not touched"):
            publish.publish(site, REPO)
    finally:
        huggingface_hub.set_client_factory(httpx2.Client)
    assert not any("/spaces/" in path for _, path in fake.requests)
    assert [c["type"] for c in fake.created] == ["dataset"]


def test_a_new_version_adds_a_tag(hub, site, tmp_path):
    publish.publish(site, REPO)
    syn.write(tmp_path / "results", syn.document(method="wga", metrics={"forget_quality": 0.3, "model_utility": 0.3}))
    record = build.build([tmp_path / "results"], site)
    assert record["version"] == "1.0.1"
    result = publish.publish(site, REPO)
    assert result.published and hub.tags == {"datasets": ["v1.0.0", "v1.0.1"], "spaces": ["v1.0.0", "v1.0.1"]}
    assert hub.commits == {"datasets": 2, "spaces": 2}
    assert "/tree/v1.0.1" in hub.files["spaces"]["index.html"].decode()


def test_token_never_appears_in_output_or_logs(monkeypatch, site, capsys, caplog):
    fake = FakeHub(fail_on="/commit/")
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    try:
        with caplog.at_level(logging.DEBUG):
            assert ubench(["leaderboard", "publish", "--build", str(site), "--repo", REPO]) == 2
            assert ubench(["leaderboard", "publish", "--build", str(site), "--repo", REPO,
                           "--target", "local:" + str(site.parent / "dry")]) == 0
    finally:
        huggingface_hub.set_client_factory(httpx2.Client)
    captured = capsys.readouterr()
    assert "publishing to someone/unlearn-bench failed" in captured.err and "***" in captured.err
    everything = captured.out + captured.err + caplog.text + "".join(
        str(r.msg) + str(r.args) for r in caplog.records)
    assert FAKE_TOKEN not in everything


def test_cli_space_options(hub, site, capsys):
    assert ubench(["leaderboard", "publish", "--build", str(site), "--repo", REPO, "--no-space"]) == 0
    assert hub.commits["spaces"] == 0
    assert ubench(["leaderboard", "publish", "--build", str(site), "--repo", REPO, "--space", SPACE]) == 0
    assert hub.commits["spaces"] == 1 and f"https://huggingface.co/spaces/{SPACE}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        ubench(["leaderboard", "publish", "--build", str(site), "--repo", REPO, "--space", SPACE, "--no-space"])


def test_missing_token_is_a_clear_error(monkeypatch, site):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(publish.PublishError, match="set HF_TOKEN"):
        publish.publish(site, REPO)


def test_local_target_dry_run(site, tmp_path):
    folder = tmp_path / "dry"
    result = publish.publish(site, REPO, target=f"local:{folder}")
    assert result.published and result.tag == "v1.0.0" and result.space_published
    assert (folder / "data" / "leaderboard.parquet").is_file() and (folder / "site" / "index.html").is_file()
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "data/leaderboard.parquet" in card.split("---")[1]
    assert _front_matter((folder / "space" / "README.md").read_text())["sdk"] == "static"
    assert "/tree/v1.0.0" in (folder / "space" / "index.html").read_text()
    assert json.loads((folder / "tags.json").read_text())["v1.0.0"] == {
        "content_hash": json.loads((site / "version.json").read_text())["content_hash"],
        "repo": REPO, "space": SPACE}
    again = publish.publish(site, REPO, target=f"local:{folder}")
    assert not again.published and not again.space_published
