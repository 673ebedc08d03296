"""Fetching an archive with MD5 verification, and unpacking it safely."""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.request
import zlib
from pathlib import Path

from scalelab.data.progress import Progress
from scalelab.errors import DataError

_BLOCK = 1 << 20


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: Path, md5: str) -> None:
    """Fetch ``url`` to ``dest`` unless a file with the right MD5 is already there.

    The bytes go to a temporary file that is renamed only once its MD5 matches, so a failed, interrupted or
    wrong download leaves nothing behind.
    """
    if dest.is_file() and file_md5(dest) == md5:
        return
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as e:
        raise DataError(f"cannot write to {dest.parent} ({e}); choose a writable folder with --data-dir") from e
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            size = response.headers.get("Content-Length")
            with Progress(f"downloading {dest.name}", int(size) if size else None, unit="B") as bar:
                while block := response.read(_BLOCK):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
        if digest.hexdigest() != md5:
            raise DataError(
                f"download of {url} has MD5 {digest.hexdigest()}, expected {md5} (corrupted in transit or changed "
                f"upstream); retry, or fetch {dest.name} yourself and unpack it into {dest.parent}"
            )
        os.replace(tmp, dest)
    except OSError as e:  # urllib's URLError and HTTPError are OSErrors
        raise DataError(
            f"could not download {url} ({e}); fetch {dest.name} yourself and unpack it into {dest.parent}, "
            "then pass that folder with --data-dir or SCALELAB_DATA"
        ) from e
    finally:
        Path(tmp).unlink(missing_ok=True)


def extract_tar(archive: Path, root: Path) -> None:
    """Unpack a .tar.gz into ``root``, refusing links and paths that would escape it.

    Files land in a temporary folder first and are then moved into place one by one, so an interrupted
    unpack never leaves half-written files under their final names.
    """
    try:
        with tempfile.TemporaryDirectory(dir=root, prefix=".extract-") as tmp_dir, tarfile.open(archive, "r:gz") as tar:
            tmp = Path(tmp_dir)
            members = [_checked(m, archive) for m in tar.getmembers()]
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                tar.extractall(tmp, members=members, filter="data")
            else:
                tar.extractall(tmp, members=members)
            for path in sorted(tmp.rglob("*")):
                if path.is_file():
                    target = root / path.relative_to(tmp)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(
            f"could not unpack {archive} into {root} ({e}); make sure the folder is writable, "
            "or delete the archive and download it again"
        ) from e


def _checked(member: tarfile.TarInfo, archive: Path) -> tarfile.TarInfo:
    parts = Path(member.name).parts
    if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in parts:
        raise DataError(f"{archive} holds an unsafe entry {member.name!r}; it is not an official archive, delete it")
    return member
