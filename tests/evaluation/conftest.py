from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_TOFU = REPO.parent / "shared" / "data" / "tofu"


@pytest.fixture
def shared_tofu() -> Path:
    if not (SHARED_TOFU / "full.json").is_file():
        pytest.skip(f"real TOFU data not found at {SHARED_TOFU} (../shared/data is not part of the repo)")
    return SHARED_TOFU


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    from evaluation.benchmarks.tofu import tiny as tofu_tiny

    return tofu_tiny.write(tmp_path_factory.mktemp("tofu_tiny") / "data")
