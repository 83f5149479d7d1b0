"""The corpus: every SAM application in ../shared/patterns deploys with `sam deploy` and passes its README's test.

One server for the whole corpus, as a user's would be; the first deploy creates SAM CLI's managed
stack (`--resolve-s3`), the others reuse it. Schedules run on a scaled clock (HEARTH_TEST_TIME_SCALE)
so `rate(1 minute)` fires within seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.corpus import Application, recipes, sam_cli
from tests.integration.harness import HearthServer

pytestmark = pytest.mark.integration

RECIPES = recipes()
# Applications that cannot pass yet, each with what it waits for (strict: a pass must remove it from here).
PENDING: dict[str, str] = {}


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path_factory.mktemp("corpus") / "data", extra_env={"HEARTH_TEST_TIME_SCALE": "30"})
    srv.start()
    yield srv
    srv.stop()


def test_the_corpus_is_there() -> None:
    assert len(RECIPES) == 12, "../shared/patterns/patterns.json is missing or changed"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=PENDING[n], strict=True))
                                  if n in PENDING else n for n in sorted(RECIPES)])
def test_application(corpus_server: HearthServer, tmp_path: Path, name: str) -> None:
    sam = sam_cli()
    assert sam is not None, "the SAM CLI is missing: ./run setup installs it in .tools/sam"
    app = Application(corpus_server, name, RECIPES[name], tmp_path)
    app.deploy(sam)
    app.run_steps()
