"""Where a release's weights come from: local files, the Hugging Face Hub, URLs with sha256, Google Drive.

Offline use: with ``HF_HUB_OFFLINE=1`` the Hub path reads only the local Hugging Face cache (through
``huggingface_hub`` itself), and URL downloads only their cache (``~/.cache/ssmblocks/checkpoints`` or
``cache_dir``). A file that is not cached raises ``PretrainedUnavailableError`` saying what to do.
"""

from __future__ import annotations

import hashlib
import socket
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

from ssmblocks._atomic import atomic_path
from ssmblocks._registry import PretrainedCfg
from ssmblocks.ops._native.build import cache_dir as ssmblocks_cache_dir

__all__ = ["PretrainedUnavailableError", "drive_page", "file_sha256", "gdrive_url", "is_glob", "resolve_hub_file",
           "resolve_weights"]

#: gdown lists a Drive folder without downloading it (``download_folder(..., skip_download=True)``) since 5.1.0.
GDOWN_MIN_VERSION = "5.1"


class PretrainedUnavailableError(RuntimeError):
    """Pretrained weights that cannot be obtained here; the message says how to get them."""


def _offline() -> bool:
    return bool(hf_constants.HF_HUB_OFFLINE)


_CHECKPOINT_ADVICE = "or download the file by hand and pass its path as checkpoint_path= (command line: --checkpoint)"


def is_glob(filename: str) -> bool:
    """True when a Hub file name is a pattern (``"*.pth"``) rather than the name of one file."""
    return any(c in filename for c in "*?[")


def resolve_hub_file(repo_id: str, filename: str, cache_dir: str | Path | None = None,
                     advice: str = _CHECKPOINT_ADVICE) -> Path:
    """A file of a Hub repo, read from the local Hugging Face cache or downloaded. ``filename`` may be a glob
    (``"*.pth"``) that must match exactly one file of the repo (for repos whose file name is not published).
    Without a network the error comes at once (the Hub client would retry for half a minute)."""
    try:
        try:
            return _hub_file(repo_id, filename, cache_dir, local_files_only=True)
        except LocalEntryNotFoundError:
            if _offline():
                raise
        unreachable = _hub_unreachable()
        if unreachable:
            raise PretrainedUnavailableError(
                f"{repo_id}/{filename} is not in the local Hugging Face cache and this machine is offline "
                f"({unreachable}). Run once with network access, {advice}")
        return _hub_file(repo_id, filename, cache_dir, local_files_only=False)
    except LocalEntryNotFoundError as err:
        raise PretrainedUnavailableError(
            f"{repo_id}/{filename} is not in the local Hugging Face cache"
            + (" and HF_HUB_OFFLINE is set" if _offline() else " and the Hub could not be reached")
            + f". Run once with network access{' (HF_HUB_OFFLINE unset)' if _offline() else ''}, {advice} ({err})"
        ) from err
    except (EntryNotFoundError, HfHubHTTPError) as err:
        raise PretrainedUnavailableError(f"cannot download {repo_id}/{filename} from the Hub: {err}") from err


def _hub_file(repo_id: str, filename: str, cache_dir: str | Path | None, *, local_files_only: bool) -> Path:
    if not is_glob(filename):
        return Path(huggingface_hub.hf_hub_download(repo_id, filename, cache_dir=cache_dir,
                                                    local_files_only=local_files_only))
    folder = Path(huggingface_hub.snapshot_download(repo_id, allow_patterns=[filename], cache_dir=cache_dir,
                                                    local_files_only=local_files_only))
    matches = sorted(p for p in folder.glob(filename) if p.is_file())
    if local_files_only and not matches:
        raise LocalEntryNotFoundError(f"no file matching {filename!r} in the cached snapshot {folder}")
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise PretrainedUnavailableError(f"{repo_id}: expected exactly one file matching {filename!r}, found {found}")
    return matches[0]


def _hub_unreachable(timeout: float = 3.0) -> str:
    """'' when the Hub's host accepts a connection within ``timeout`` seconds, else why not."""
    endpoint = urllib.parse.urlparse(hf_constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
    except OSError as err:
        return f"cannot connect to {endpoint.hostname}:{port}: {err}"
    return ""


def _checkpoint_cache(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir) if cache_dir else ssmblocks_cache_dir() / "checkpoints"


def file_sha256(path: Path) -> str:
    """The hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_matches(path: Path, expected: str | None) -> bool:
    """True when nothing is declared or the file's sha256 starts with ``expected`` (a whole digest or a prefix)."""
    return not expected or file_sha256(path).startswith(expected)


def _download_url(cfg: PretrainedCfg, cache_dir: str | Path | None) -> Path:
    # one folder per URL: two releases whose URLs end in the same file name must not share a cached file
    url_key = hashlib.sha256(cfg.url.encode()).hexdigest()[:16]
    target = _checkpoint_cache(cache_dir) / url_key / Path(urllib.request.urlparse(cfg.url).path).name
    if target.is_file() and _sha256_matches(target, cfg.sha256):
        return target
    if _offline():
        raise PretrainedUnavailableError(f"{cfg.name}: {target.name} is not cached in {target.parent} and "
                                         f"HF_HUB_OFFLINE is set. Download {cfg.url} into that folder, or download "
                                         f"it anywhere and {_load_it_yourself(cfg, target.name)}")
    try:
        with atomic_path(target) as tmp:
            with urllib.request.urlopen(cfg.url, timeout=60) as response, open(tmp, "wb") as out:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
            _verify(cfg, tmp, cfg.url)
    except OSError as err:
        raise PretrainedUnavailableError(f"{cfg.name}: cannot download {cfg.url} ({err}). Download it by hand and "
                                         f"{_load_it_yourself(cfg, target.name)}") from err
    finally:
        _remove_if_empty(target.parent)     # a failed download leaves no empty folder behind
    return target


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _verify(cfg: PretrainedCfg, path: Path, origin: str) -> None:
    if not _sha256_matches(path, cfg.sha256):
        expected = cfg.sha256 if len(cfg.sha256) == 64 else f"{cfg.sha256}... (a prefix)"
        raise PretrainedUnavailableError(f"{cfg.name}: the file downloaded from {origin} does not have the "
                                         f"expected sha256 {expected} but {file_sha256(path)}; it was discarded")


def resolve_weights(cfg: PretrainedCfg, cache_dir: str | Path | None = None) -> Path:
    """The local path of ``cfg``'s weights (file > Hub > URL; a cfg with both a Hub file and a URL tries the URL when
    the Hub fails); explains manual downloads."""
    source = cfg.source
    if source == "file":
        return Path(cfg.file)
    if source == "hf-hub":
        try:
            return resolve_hub_file(cfg.hf_hub_id, cfg.hf_hub_filename, cache_dir, advice=_hub_advice(cfg))
        except PretrainedUnavailableError as hub_error:
            if not cfg.url:                 # a release on the Hub and at a URL: the URL is tried second
                raise
            try:
                return _download_url(cfg, cache_dir)
            except PretrainedUnavailableError as url_error:
                raise PretrainedUnavailableError(f"{hub_error}\nThe release URL failed too: {url_error}") from None
    if source == "url":
        return _download_url(cfg, cache_dir)
    if source == "gdrive":
        return _download_gdrive(cfg, cache_dir)
    if source == "manual":
        raise PretrainedUnavailableError(_manual_advice(cfg, cfg.manual_url, "cannot be downloaded automatically"))
    raise PretrainedUnavailableError(f"{cfg.name} has no published weights; build it with pretrained=False")


def _load_it_yourself(cfg: PretrainedCfg, filename: str | None) -> str:
    """How to load a file the user downloaded, in Python and on the command line."""
    path = f"path/to/{filename or 'file.pth'}"
    return (f"then load it with ssmblocks.create_model({cfg.name!r}, checkpoint_path='{path}') (command line: "
            f"--model {cfg.name} --checkpoint {path})")


def _hub_advice(cfg: PretrainedCfg) -> str:
    """For a Hub file that could not be fetched: where to download it by hand, then how to load it."""
    repo = f"https://huggingface.co/{cfg.hf_hub_id}"
    if is_glob(cfg.hf_hub_filename):
        where, filename = f"the single file matching {cfg.hf_hub_filename!r} in {repo}/tree/main", None
    else:
        where, filename = f"{repo}/resolve/main/{cfg.hf_hub_filename}", Path(cfg.hf_hub_filename).name
    also = f" (also published at {cfg.fallback_url})" if cfg.fallback_url else ""
    return f"or download {where}{also} and {_load_it_yourself(cfg, filename)}"


def _manual_advice(cfg: PretrainedCfg, where: str, why: str) -> str:
    filename = cfg.manual_filename or "the checkpoint"
    also = f" (also at {cfg.fallback_url})" if cfg.fallback_url else ""
    return (f"the weights of {cfg.name} are published at {where}{also} and {why}. Download {filename} from there, "
            f"{_load_it_yourself(cfg, cfg.manual_filename)}")


def gdrive_url(file_id: str) -> str:
    """The page of a Google Drive file."""
    return f"https://drive.google.com/file/d/{file_id}/view"


def gdrive_folder_url(folder_id: str) -> str:
    """The page of a Google Drive folder."""
    return f"https://drive.google.com/drive/folders/{folder_id}"


def drive_page(cfg: PretrainedCfg) -> str:
    """The Google Drive page of ``cfg``'s file, or of the folder that holds it."""
    return gdrive_url(cfg.gdrive_id) if cfg.gdrive_id else gdrive_folder_url(cfg.gdrive_folder_id)


def _download_gdrive(cfg: PretrainedCfg, cache_dir: str | Path | None) -> Path:
    """A Google Drive file (by id, or by name in a folder) through the optional ``gdown`` package, cached under
    its ``manual_filename`` in a folder named by the Drive id (two releases may share a file name). A cached file
    is used without importing gdown."""
    name = cfg.manual_filename or f"{cfg.gdrive_id}.pth"
    target = _checkpoint_cache(cache_dir) / "gdrive" / (cfg.gdrive_id or cfg.gdrive_folder_id) / name
    if target.is_file() and _sha256_matches(target, cfg.sha256):
        return target
    page = drive_page(cfg)
    try:
        import gdown
    except ImportError:
        raise PretrainedUnavailableError(_manual_advice(
            cfg, page, "Google Drive downloads need the optional gdown package "
            f"(pip install 'gdown>={GDOWN_MIN_VERSION}', or ssmblocks[gdrive])")) from None
    if _offline():
        raise PretrainedUnavailableError(_manual_advice(
            cfg, page, f"it is not cached in {target.parent} and HF_HUB_OFFLINE is set"))
    file_id = cfg.gdrive_id or _drive_folder_file_id(gdown, cfg)
    try:
        with atomic_path(target) as tmp:
            try:
                done = gdown.download(id=file_id, output=str(tmp), quiet=False)
            except Exception as err:           # gdown raises its own, requests' and RuntimeError exceptions
                raise PretrainedUnavailableError(_manual_advice(
                    cfg, page, f"gdown could not fetch it ({type(err).__name__}: {err})")) from err
            if done is None:                   # gdown 5 reports a failed download by returning None
                raise PretrainedUnavailableError(_manual_advice(cfg, page, "gdown could not fetch it"))
            _verify(cfg, tmp, "Google Drive")
    finally:
        _remove_if_empty(target.parent)
    return target


def _drive_folder_file_id(gdown: Any, cfg: PretrainedCfg) -> str:
    """The Drive id of ``cfg.manual_filename`` in the folder ``cfg.gdrive_folder_id``, from gdown's listing
    (``skip_download=True`` returns entries with ``id`` and ``path``, the path relative to the folder)."""
    page = drive_page(cfg)
    try:
        with tempfile.TemporaryDirectory() as scratch:      # gdown 5 creates its output folder even when listing
            entries = gdown.download_folder(id=cfg.gdrive_folder_id, output=scratch, quiet=True,
                                            skip_download=True)
    except Exception as err:               # as above; a TypeError means a gdown older than GDOWN_MIN_VERSION
        raise PretrainedUnavailableError(_manual_advice(
            cfg, page, f"listing it failed: gdown could not list the folder ({type(err).__name__}: {err})"
            + (f"; listing needs gdown >= {GDOWN_MIN_VERSION}" if isinstance(err, TypeError) else ""))) from err
    if entries is None:                    # gdown 5 reports a failed listing by returning None
        raise PretrainedUnavailableError(_manual_advice(cfg, page, "gdown could not list the folder"))
    ids = [entry.id for entry in entries if Path(entry.path).name == cfg.manual_filename]
    if len(ids) != 1:
        held = ", ".join(sorted(str(entry.path) for entry in entries)) or "nothing"
        problem = "has no file named" if not ids else "has several files named"
        raise PretrainedUnavailableError(f"{cfg.name}: the Google Drive folder {page} {problem} "
                                         f"{cfg.manual_filename}; it holds: {held}. If you have the file from "
                                         f"elsewhere, {_load_it_yourself(cfg, cfg.manual_filename)}")
    return ids[0]
