"""Helpers: a provider over a real SQLite store and blob store in a temporary data directory."""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.aws.context import Principal, RequestContext
from hearth.config import Settings
from hearth.functions.service import FunctionService
from hearth.functions.store import FunctionStore, open_store
from hearth.services.lambda_.code_url import CodeUrlSigner
from hearth.services.lambda_.layers import LambdaLayersProvider
from hearth.services.lambda_.policies import LambdaPolicyProvider
from hearth.services.lambda_.provider import LambdaProvider
from hearth.services.lambda_.versions import LambdaVersionsProvider
from hearth.store.blobs import BlobStore

ACCOUNT = "000000000000"
OTHER = "111111111111"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"
APP = "def handler(event, context):\n    return {'ok': True}\n"


def make_zip(files: dict[str, str | bytes], executable: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | (0o755 if name in executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return buf.getvalue()


def ctx(
    account: str = ACCOUNT, region: str = "us-east-1", operation: str = "Test", body: bytes = b""
) -> RequestContext:
    return RequestContext("lambda", operation, region, Principal("AKIDTEST", account), "req-1", raw_body=body)


def fake_runtime_check(runtime: str) -> str | None:
    if runtime.startswith(("python3.", "nodejs", "provided")):
        return None
    return f"The runtime {runtime} is not installed on this Hearth host. Installed runtimes: python3.11."


@dataclass
class Env:
    data_dir: Path
    settings: Settings
    store: FunctionStore
    blobs: BlobStore
    functions: FunctionService
    provider: LambdaProvider
    versions: LambdaVersionsProvider
    policies: LambdaPolicyProvider
    layers: LambdaLayersProvider

    async def create(self, name: str = "fn", **overrides: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": "python3.11",
            "Handler": "app.handler",
            "Role": ROLE,
            "Code": {"ZipFile": make_zip({"app.py": APP})},
        }
        params.update(overrides)
        return await self.provider.create_function(ctx(), params)

    async def settle(self) -> None:
        await self.functions.wait_idle()


def build(data_dir: Path, draw: Callable[[], float] = random.random) -> Env:
    settings = Settings(data_dir=data_dir, port=4566)
    store = open_store(data_dir)
    blobs = BlobStore(data_dir)
    functions = FunctionService(settings, store, blobs, runtime_check=fake_runtime_check, draw=draw)
    signer = CodeUrlSigner.load(data_dir)
    provider = LambdaProvider(settings, store, functions, signer)
    return Env(data_dir, settings, store, blobs, functions, provider, LambdaVersionsProvider(functions),
               LambdaPolicyProvider(functions), LambdaLayersProvider(settings, functions.layers, signer))
