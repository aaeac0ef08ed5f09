"""Photos a reporter sends with a written report: checked by their bytes, not their names, and
stored like recordings, on disk under the media folder with a row (`Attachment`) that says what
and where.

A photo chosen on a form that comes back with an error (or with the phone's code to type) is
held in `pending/` under a random token, so the visitor need not choose it again; held photos
nobody claims are worth nothing and can be removed after a day.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from cases.models import Attachment, Case

PHOTO = "photo"
# A file a department sends with its reply (答复附件): a photo of the work done, or a document.
REPLY = "reply"
PDF = "application/pdf"
# The formats every browser shows and every phone makes, by their first bytes.
PHOTO_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
PENDING_FOLDER = "pending"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")


class PhotoRejectedError(ValueError):
    """The file is not a photo we take: `reason` is "empty", "too_big" or "type"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckedPhoto:
    """A photo's bytes with the type its bytes show."""

    data: bytes
    content_type: str


def photo_content_type(data: bytes) -> str | None:
    """JPEG, PNG or WebP, as the file's magic bytes say; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_photo(data: bytes, *, max_bytes: int) -> CheckedPhoto:
    """The photo if it is one we take, else PhotoRejectedError saying why."""
    if not data:
        raise PhotoRejectedError("empty")
    if len(data) > max_bytes:
        raise PhotoRejectedError("too_big")
    content_type = photo_content_type(data)
    if content_type is None:
        raise PhotoRejectedError("type")
    return CheckedPhoto(data=data, content_type=content_type)


def check_reply_file(data: bytes, *, max_bytes: int) -> CheckedPhoto:
    """A file a department may attach to its reply: a photo (as `check_photo`) or a PDF
    document, by its bytes; PhotoRejectedError saying why not."""
    if data.startswith(b"%PDF-"):
        if len(data) > max_bytes:
            raise PhotoRejectedError("too_big")
        return CheckedPhoto(data=data, content_type=PDF)
    return check_photo(data, max_bytes=max_bytes)


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so that readers see all of it or none of it: recordings and photos alike.

    A write that fails (a full disk: OSError ENOSPC) removes its partial temporary file
    before the error goes on, so a failure leaves nothing half-written behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as handle:
        try:
            handle.write(data)
            handle.flush()  # here, not at close, so a full disk fails inside this block
            os.fsync(handle.fileno())
        except BaseException:
            handle.close()
            os.unlink(handle.name)
            raise
    os.replace(handle.name, path)


def store_photo(
    session: Session,
    *,
    case: Case,
    photo: CheckedPhoto,
    media_dir: Path,
    now: datetime,
    kind: str = PHOTO,
) -> Attachment:
    """Write the photo (or a reply's document) under the media folder and add its row to the
    case (flushed, not committed). The file is written first: a row never points at nothing."""
    sha256 = hashlib.sha256(photo.data).hexdigest()
    extension = {**PHOTO_EXTENSIONS, PDF: ".pdf"}[photo.content_type]
    folder = "photos" if kind == PHOTO else "replies"
    relative = f"{folder}/{now:%Y/%m}/{case.number}-{sha256[:16]}{extension}"
    write_atomically(media_dir / relative, photo.data)
    attachment = Attachment(
        case_id=case.id,
        kind=kind,
        content_type=photo.content_type,
        size=len(photo.data),
        sha256=sha256,
        path=relative,
        created_at=now,
    )
    session.add(attachment)
    session.flush()
    return attachment


# Held photos are for a form being filled in: gone after an hour, and never more than this in
# all, so that posting the form over and over cannot fill the disk the recordings share.
HELD_FOR = timedelta(hours=1)
HELD_AT_MOST_BYTES = 200 * 1024 * 1024


def hold_photo(photo: CheckedPhoto, *, media_dir: Path, now: datetime) -> str | None:
    """Keep a checked photo until the form is sent again; returns its token, or None when the
    folder of held photos is full (the visitor then chooses the photo again)."""
    folder = media_dir / PENDING_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    held = 0
    for path in folder.iterdir():
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # released meanwhile
        if datetime.fromtimestamp(stat.st_mtime, UTC) < now - HELD_FOR:
            path.unlink(missing_ok=True)
        else:
            held += stat.st_size
    if held + len(photo.data) > HELD_AT_MOST_BYTES:
        return None
    token = secrets.token_urlsafe(16)
    write_atomically(folder / token, photo.data)
    return token


def held_photo(token: str | None, *, media_dir: Path, max_bytes: int) -> CheckedPhoto | None:
    """The photo held under `token`, checked again; None if there is none (or the token is not
    one `hold_photo` makes: it comes from the visitor)."""
    if not token or not _TOKEN.match(token):
        return None
    try:
        data = (media_dir / PENDING_FOLDER / token).read_bytes()
    except FileNotFoundError:
        return None
    try:
        return check_photo(data, max_bytes=max_bytes)
    except PhotoRejectedError:
        return None


def release_held_photo(token: str | None, *, media_dir: Path) -> None:
    """Forget a held photo (it was stored with the case, or the visitor removed it)."""
    if token and _TOKEN.match(token):
        (media_dir / PENDING_FOLDER / token).unlink(missing_ok=True)
