"""Publishing through the real huggingface_hub client over a mocked HTTP transport (offline)."""
from __future__ import annotations

import json
import logging

import httpx2
import huggingface_hub
import pytest

from tests.leaderboard import lb_synthetic as syn
from leaderboard import build, publish
from workflows.cli import main as ubench

REPO = "someone/unlearn-bench"
FAKE_TOKEN = "hf_FAKEtoken1234567890abcdefSECRET"


class FakeHub:
    """Answers the Hub API endpoints the client calls; records every request."""

    def __init__(self, fail_on: str | None = None):
        self.requests: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self.commits = 0
        self.fail_on = fail_on
        self.uploaded: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path, method = request.url.path, request.method
        self.requests.append((method, path))
        assert request.headers.get("authorization") == f"Bearer {FAKE_TOKEN}" or path == "/api/agent-harnesses"
        if self.fail_on and self.fail_on in path:
            # A server that echoes the credential back: the message must still come out masked.
            return httpx2.Response(400, json={"error": f"bad request for token {FAKE_TOKEN}"})
        base = f"/api/datasets/{REPO}"
        if path == "/api/agent-harnesses":
            return httpx2.Response(404, json={"error": "not found"})
        if path == "/api/validate-yaml":  # the client checks the dataset card's YAML header
            self.card = json.loads(request.content)["content"]
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        if path == "/api/repos/create":
            return httpx2.Response(200, json={"url": f"https://huggingface.co/datasets/{REPO}"})
        if path == f"{base}/refs":
            return httpx2.Response(200, json={
                "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": "0" * 40}],
                "converts": [],
                "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": "1" * 40} for t in self.tags]})
        if path == f"{base}/preupload/main":
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        if path == f"{base}/commit/main":
            self.commits += 1
            lines = [json.loads(line) for line in request.content.decode().splitlines() if line]
            self.uploaded = sorted(l["value"]["path"] for l in lines if l.get("key") == "file")
            oid = f"{self.commits:040x}"
            return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/datasets/{REPO}/commit/{oid}",
                                              "commitOid": oid})
        if path.startswith(f"{base}/tag/"):
            self.tags.append(json.loads(request.content)["tag"])
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


def test_publish_uploads_and_tags_then_is_a_no_op(hub, site):
    first = publish.publish(site, REPO)
    assert first.published and first.tag == "v1.0.0"
    assert hub.tags == ["v1.0.0"] and hub.commits == 1
    assert {"README.md", "data/leaderboard.parquet", "site/index.html", "site/assets/data.js",
            "version.json", "CHANGELOG.md"} <= set(hub.uploaded)
    assert ("POST", "/api/repos/create") in hub.requests
    writes_before = len(_writes(hub))
    second = publish.publish(site, REPO)
    assert not second.published and "already published" in second.message
    assert len(_writes(hub)) == writes_before and hub.commits == 1 and hub.tags == ["v1.0.0"]


def test_a_new_version_adds_a_tag(hub, site, tmp_path):
    publish.publish(site, REPO)
    syn.write(tmp_path / "results", syn.document(method="wga", metrics={"forget_quality": 0.3, "model_utility": 0.3}))
    record = build.build([tmp_path / "results"], site)
    assert record["version"] == "1.0.1"
    result = publish.publish(site, REPO)
    assert result.published and hub.tags == ["v1.0.0", "v1.0.1"] and hub.commits == 2


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


def test_missing_token_is_a_clear_error(monkeypatch, site):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(publish.PublishError, match="set HF_TOKEN"):
        publish.publish(site, REPO)


def test_local_target_dry_run(site, tmp_path):
    folder = tmp_path / "dry"
    result = publish.publish(site, REPO, target=f"local:{folder}")
    assert result.published and result.tag == "v1.0.0"
    assert (folder / "data" / "leaderboard.parquet").is_file() and (folder / "site" / "index.html").is_file()
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "data/leaderboard.parquet" in card.split("---")[1]
    assert json.loads((folder / "tags.json").read_text())["v1.0.0"]["repo"] == REPO
    again = publish.publish(site, REPO, target=f"local:{folder}")
    assert not again.published
