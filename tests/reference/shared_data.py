"""../shared/data beside the repository: third-party test data (corpora, tokenizers, eval sets).
Tests use it where it exists and are skipped, saying which path they need, where it does not (a
clone without ../shared); the product never reads it. Inside a test or fixture call
shared_data(...); for whole tests or modules (pytestmark) use the needs_shared_data(...) mark."""
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _reason(parts):
    return f"needs ../shared/data/{'/'.join(map(str, parts))} (third-party test data), absent"


def shared_data(*parts):
    """SHARED / parts (e.g. "corpus", "en", "wiki_demo.txt"); skips the calling test when it is absent."""
    __tracebackhide__ = True  # the skip is reported at the caller's line
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(_reason(parts))
    return path


def needs_shared_data(*parts):
    """A mark that skips the test (or, as pytestmark, the module) when SHARED / parts is absent."""
    return pytest.mark.skipif(not SHARED.joinpath(*parts).exists(), reason=_reason(parts))
