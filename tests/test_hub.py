"""Registry look-ups and weight resolution: Hub cache (offline), direct URLs on a loopback server, local folders,
manual sources, export and push. No test touches the network beyond 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import types
import urllib.parse
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants as hf_constants

import ssmblocks
from ssmblocks import PretrainedUnavailableError
from ssmblocks._registry import WEIGHT_SOURCE_FIELDS, PretrainedCfg
from ssmblocks._weights import resolve_weights
from ssmblocks.necks import SPYNET_SINTEL, SpyNet, spynet_sintel


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---- registry ---------------------------------------------------------------------------------------------------
def test_list_models_filters():
    light = ssmblocks.list_models("mambair_light_x*")
    assert light == ["mambair_light_x2", "mambair_light_x3", "mambair_light_x4"]
    assert "test_mambair_sr" not in ssmblocks.list_models(exclude_filters="test_*")
    assert ssmblocks.list_models(["mambair_car", "mambairunet*"]) == ["mambair_car", "mambairunet_realdn"]
    assert ssmblocks.list_pretrained("mambair_car*") == ["mambair_car.q10", "mambair_car.q30", "mambair_car.q40"]
    assert not any(name.startswith("test_") for name in ssmblocks.list_pretrained())


def test_names_tags_and_errors():
    assert ssmblocks.is_model("mambair_car") and ssmblocks.is_model("mambair_car.q30")
    assert not ssmblocks.is_model("mambair_car.q99") and not ssmblocks.is_model("resnet50")
    assert ssmblocks.get_pretrained_cfg("mambair_dn_color").tag == "sigma15"   # the default tag
    assert ssmblocks.create_model("mambair_car.q40").pretrained_cfg.tag == "q40"
    with pytest.raises(ValueError, match="has no pretrained tag 'q99'; its tags: q10, q30, q40"):
        ssmblocks.get_pretrained_cfg("mambair_car.q99")
    with pytest.raises(ValueError, match=r"unknown model 'mambair_sr_x5'\. Did you mean: .*mambair_sr_x"):
        ssmblocks.create_model("mambair_sr_x5")
    with pytest.raises(ValueError, match=r"looks like a checkpoint file: use ssmblocks\.load_checkpoint"):
        ssmblocks.create_model("weights/mambair.pth")
    with pytest.raises(ValueError, match=r"looks like a checkpoint file: use ssmblocks\.load_checkpoint"):
        ssmblocks.create_model("MambaIR_SR_x4.pth")
    with pytest.raises(ValueError, match="not a model name"):
        ssmblocks.create_model("mambair_sr_x4.")
    with pytest.raises(TypeError, match="takes a model name"):
        ssmblocks.create_model(None)


def test_drive_source_without_gdown_explains_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)                    # import gdown -> ImportError
    with pytest.raises(PretrainedUnavailableError) as err:
        ssmblocks.create_model("mambair_sr_x2", pretrained=True)
    message = str(err.value)
    assert "https://drive.google.com/file/d/11Kiy_0hmMyDjMvW7MmbUT6tO9n5JrDeB/view" in message
    assert "optional gdown package" in message
    assert "ssmblocks.create_model('mambair_sr_x2.official', checkpoint_path=" in message
    with pytest.raises(PretrainedUnavailableError, match="has no published weights"):
        ssmblocks.create_model("test_mambair_sr", pretrained=True)


# ---- direct URL with sha256, on a loopback server -----------------------------------------------------------------
def test_url_source_downloads_verifies_and_caches(served, tmp_path, monkeypatch):
    root, base = served
    source = ssmblocks.create_model("test_mambair_sr")
    ssmblocks.save_for_hub(source, root)
    sha = hashlib.sha256((root / "model.safetensors").read_bytes()).hexdigest()
    overlay = {"url": f"{base}/model.safetensors", "sha256": sha}
    cache = tmp_path / "cache"
    model = ssmblocks.create_model("test_mambair_sr", pretrained=True, pretrained_cfg_overlay=overlay, cache_dir=cache)
    assert _same_weights(model, source) and len(list(cache.glob("*/model.safetensors"))) == 1
    (root / "model.safetensors").unlink()                         # served no more: the cache answers
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    again = ssmblocks.create_model("test_mambair_sr", pretrained=True, pretrained_cfg_overlay=overlay, cache_dir=cache)
    assert _same_weights(again, source)
    with pytest.raises(PretrainedUnavailableError, match=r"not cached .* HF_HUB_OFFLINE is set"):
        ssmblocks.create_model("test_mambair_sr", pretrained=True, pretrained_cfg_overlay=overlay,
                               cache_dir=tmp_path / "empty")


def test_two_urls_ending_in_the_same_file_name_are_cached_apart(served, tmp_path):
    root, base = served
    sources = {}
    for folder in ("a", "b"):
        sources[folder] = ssmblocks.create_model("test_mambair_sr")           # different random weights
        ssmblocks.save_for_hub(sources[folder], root / folder)
    for folder in ("a", "b", "a"):
        overlay = {"url": f"{base}/{folder}/model.safetensors"}              # no sha256 declared
        model = ssmblocks.create_model("test_mambair_sr", pretrained=True, pretrained_cfg_overlay=overlay,
                                       cache_dir=tmp_path)
        assert _same_weights(model, sources[folder]), folder


def test_url_source_rejects_a_wrong_checksum(served, tmp_path):
    root, base = served
    ssmblocks.save_for_hub(ssmblocks.create_model("test_mambair_sr"), root)
    overlay = {"url": f"{base}/model.safetensors", "sha256": "0" * 64}
    with pytest.raises(PretrainedUnavailableError, match="does not have the expected sha256"):
        ssmblocks.create_model("test_mambair_sr", pretrained=True, pretrained_cfg_overlay=overlay, cache_dir=tmp_path)
    assert not (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.part"))


def test_a_sha256_prefix_in_a_basicsr_style_name_is_verified(served, tmp_path):
    """BasicSR/torch.hub name release files ``name-<first 8 hex digits of the sha256>.pth``; SpyNet's Sintel
    weights are declared by that prefix only. A file whose digest does not start with it is discarded."""
    assert SPYNET_SINTEL.sha256 == Path(urllib.parse.urlparse(SPYNET_SINTEL.url).path).stem.rsplit("-", 1)[1]
    root, base = served
    torch.manual_seed(0)
    source = SpyNet()
    torch.save({"params": source.state_dict()}, root / "spynet.pth")
    digest = hashlib.sha256((root / "spynet.pth").read_bytes()).hexdigest()
    wrong = f"{(int(digest[0], 16) + 1) % 16:x}{digest[1:8]}"
    for prefix in (digest[:8], wrong):
        (root / f"spynet_sintel_final-{prefix}.pth").write_bytes((root / "spynet.pth").read_bytes())

    def served_as(prefix):      # the registered source, pointed at the loopback copy whose name carries the prefix
        name = f"spynet_sintel_final-{prefix}.pth"
        return dataclasses.replace(SPYNET_SINTEL, url=f"{base}/{name}", sha256=name[:-4].rsplit("-", 1)[1])

    model = spynet_sintel(cache_dir=tmp_path / "good", source=served_as(digest[:8]))
    assert _same_weights(model, source) and not model.training
    assert len(list((tmp_path / "good").glob(f"*/spynet_sintel_final-{digest[:8]}.pth"))) == 1
    with pytest.raises(PretrainedUnavailableError, match=rf"expected sha256 {wrong}\.\.\. \(a prefix\) but {digest}"):
        spynet_sintel(cache_dir=tmp_path / "bad", source=served_as(wrong))
    assert not list((tmp_path / "bad").iterdir())


def test_declared_sources_are_checked_when_the_cfg_is_made():
    for bad in ("3d2a128", "3D2A1287", "3d2a128z", "0" * 65):
        with pytest.raises(ValueError, match="sha256 must be a lowercase hex digest or a prefix of at least 8"):
            PretrainedCfg(url="https://example.org/w.pth", sha256=bad)
    with pytest.raises(ValueError, match="gdrive_folder_id source needs manual_filename"):
        PretrainedCfg(gdrive_folder_id="FOLDER")


# ---- the Hugging Face cache, offline ------------------------------------------------------------------------------
def test_hf_hub_repo_offline_from_a_hand_built_cache(hand_built_cache, tmp_path, monkeypatch):
    source = ssmblocks.create_model("test_mambair_dn", pretrained_cfg_overlay={"notes": "exported"})
    folder = ssmblocks.save_for_hub(source, tmp_path / "export")
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "test_mambair_dn" and config["pretrained_cfg"]["notes"] == "exported"
    assert "Task:" in (folder / "README.md").read_text()
    cache = tmp_path / "hf"
    hand_built_cache(cache, "someone/mambair-dn", folder, ["config.json", "model.safetensors"])
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    model = ssmblocks.create_model("hf-hub:someone/mambair-dn", cache_dir=cache)
    assert _same_weights(model, source)
    assert model.pretrained_cfg.hf_hub_id == "someone/mambair-dn" and model.architecture == "test_mambair_dn"
    # a registered cfg pointing at the same repo resolves through the same path
    overlay = {"hf_hub_id": "someone/mambair-dn"}
    via_cfg = ssmblocks.create_model("test_mambair_dn", pretrained=True, pretrained_cfg_overlay=overlay,
                                     cache_dir=cache)
    assert _same_weights(via_cfg, source)


def test_an_exported_folder_names_no_source_of_the_original_release(tmp_path):
    """A re-exported model has its own weight file: the release's Drive ids, URLs, file name and digest must not
    follow it into config.json (they would point at a different file)."""
    release = {"gdrive_folder_id": "folder-id", "manual_filename": "release.pth", "manual_url": "https://example.org",
               "fallback_url": "https://example.org/mirror", "hf_hub_filename": "*.pth", "sha256": "3d2a1287",
               "notes": "kept"}
    source = ssmblocks.create_model("test_mambair_dn", pretrained_cfg_overlay=release)
    folder = ssmblocks.save_for_hub(source, tmp_path / "export")
    written = json.loads((folder / "config.json").read_text())["pretrained_cfg"]
    assert written["notes"] == "kept" and not set(written) & set(WEIGHT_SOURCE_FIELDS)
    model = ssmblocks.create_model(f"local-dir:{folder}")
    assert _same_weights(model, source) and model.pretrained_cfg.gdrive_folder_id is None
    assert model.pretrained_cfg.hf_hub_filename == "model.safetensors"


def test_hf_hub_file_missing_from_the_cache(hand_built_cache, tmp_path, monkeypatch):
    folder = ssmblocks.save_for_hub(ssmblocks.create_model("test_mambair_dn"), tmp_path / "export")
    cache = tmp_path / "hf"
    hand_built_cache(cache, "someone/partial", folder, ["config.json"])        # weights never downloaded
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    message = "not in the local Hugging Face cache and HF_HUB_OFFLINE"
    with pytest.raises(PretrainedUnavailableError, match=message) as err:
        ssmblocks.create_model("hf-hub:someone/partial", cache_dir=cache)
    assert "create_model('local-dir:" in str(err.value) and "checkpoint_path" not in str(err.value)
    assert "someone/partial/model.safetensors is not in the local" in str(err.value)   # not only the .bin fallback


def test_weights_that_cannot_be_fetched_say_where_to_download_them_and_how_to_load_them(tmp_path, monkeypatch):
    """Offline with an empty cache: the Hub file's URL (or, for an unpublished file name, the repo's file list),
    the release URL, and the exact call and command-line flags that load the file once downloaded by hand."""
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    hub = dataclasses.replace(ssmblocks.get_pretrained_cfg("test_mambair_sr"), hf_hub_id="org/repo",
                              hf_hub_filename="weights/model.safetensors")
    with pytest.raises(PretrainedUnavailableError) as err:
        resolve_weights(hub, cache_dir=tmp_path)
    assert "https://huggingface.co/org/repo/resolve/main/weights/model.safetensors" in str(err.value)
    assert ("create_model('test_mambair_sr.untrained', checkpoint_path='path/to/model.safetensors') (command line: "
            "--model test_mambair_sr.untrained --checkpoint path/to/model.safetensors)") in str(err.value)
    with pytest.raises(PretrainedUnavailableError) as err:
        resolve_weights(dataclasses.replace(hub, hf_hub_filename="*.pth"), cache_dir=tmp_path)
    assert "the single file matching '*.pth' in https://huggingface.co/org/repo/tree/main" in str(err.value)
    url = dataclasses.replace(ssmblocks.get_pretrained_cfg("test_mambair_sr"), url="http://127.0.0.1:9/w.pth")
    with pytest.raises(PretrainedUnavailableError) as err:
        resolve_weights(url, cache_dir=tmp_path)
    assert (f"w.pth is not cached in {tmp_path}/" in str(err.value) and "and HF_HUB_OFFLINE is set. Download "
            "http://127.0.0.1:9/w.pth into that folder, or download it anywhere and then load it with "
            "ssmblocks.create_model(") in str(err.value)
    assert "--checkpoint path/to/w.pth" in str(err.value)


def test_drive_source_through_gdown_up_to_the_network(tmp_path, monkeypatch):
    """With gdown installed, the Drive id is handed to gdown.download, the file cached, then loaded strictly."""
    source = ssmblocks.create_model("test_mambair_sr")
    calls = []

    def download(id, output, quiet):                                   # gdown's own argument names
        calls.append(id)
        torch.save({"params": source.state_dict()}, output)
        return output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=download))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    overlay = {"gdrive_id": "FILE-ID", "manual_filename": "tiny.pth"}
    model = ssmblocks.create_model("test_mambair_sr", pretrained=True, pretrained_cfg_overlay=overlay,
                                   cache_dir=tmp_path)
    assert calls == ["FILE-ID"] and _same_weights(model, source)
    assert len(list((tmp_path / "gdrive").glob("*/tiny.pth"))) == 1
    again = ssmblocks.create_model("test_mambair_sr", pretrained=True, pretrained_cfg_overlay=overlay,
                                   cache_dir=tmp_path)
    assert calls == ["FILE-ID"] and _same_weights(again, source)        # served from the cache


def test_mambair_hub_source_offline_from_a_hand_built_cache(hand_built_cache, tmp_path):
    """create_model('mambair_sr_x4', pretrained=True) reads the authors' Hub file from the local cache."""
    official = ssmblocks.create_model("mambair_sr_x4")
    folder = tmp_path / "files"
    (folder / "MambaIRv1_ckpt").mkdir(parents=True)
    torch.save({"params": official.state_dict()}, folder / "MambaIRv1_ckpt" / "MambaIR_classicSRx4.pth")
    cache = tmp_path / "hf"
    hand_built_cache(cache, "cguoh/MambaIR", folder, ["MambaIRv1_ckpt/MambaIR_classicSRx4.pth"])
    model = ssmblocks.create_model("mambair_sr_x4", pretrained=True, cache_dir=cache)
    assert _same_weights(model, official)
    with pytest.raises(PretrainedUnavailableError, match=r"google\.com/file/d/1qSPy6B7Jvi7PDHM1fl8Q88kn7ckwtusK"):
        ssmblocks.create_model("mambair_dn_color.sigma25", pretrained=True, cache_dir=cache)


def test_local_dir_round_trip_keeps_model_args(tmp_path):
    source = ssmblocks.create_model("test_mambair_sr", embed_dim=30, depths=(1,))
    folder = ssmblocks.save_for_hub(source, tmp_path / "export")
    model = ssmblocks.create_model(f"local-dir:{folder}")
    assert model.model_args["embed_dim"] == 30 and list(model.model_args["depths"]) == [1]
    assert model.model_args["upscale"] == 2 and _same_weights(model, source)      # full hyperparameters
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="has none of"):
        ssmblocks.create_model(f"local-dir:{folder}")


def test_push_to_hub_uploads_the_exported_folder():
    class RecordingApi:
        def __init__(self):
            self.calls = []

        def create_repo(self, repo_id, private, exist_ok):
            self.calls.append(("create_repo", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, commit_message):
            files = sorted(p.name for p in Path(folder_path).iterdir())
            self.calls.append(("upload_folder", repo_id, files, commit_message))
            return type("Info", (), {"commit_url": f"https://hub.example/{repo_id}/commit/1"})()

    api = RecordingApi()
    url = ssmblocks.push_to_hub(ssmblocks.create_model("test_mambair_sr"), "me/test-model", private=True, api=api)
    assert url.endswith("me/test-model/commit/1")
    assert api.calls[0] == ("create_repo", "me/test-model", True, True)
    assert api.calls[1][:3] == ("upload_folder", "me/test-model", ["README.md", "config.json", "model.safetensors"])


def test_checkpoint_path_and_file_overlay(tmp_path):
    source = ssmblocks.create_model("test_mambair_light")
    path = tmp_path / "w.pth"
    torch.save({"params": source.state_dict()}, path)
    by_file = ssmblocks.create_model("test_mambair_light", pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    assert _same_weights(by_file, source)


def test_exported_files_are_whole_and_readable_like_any_file(tmp_path):
    folder = ssmblocks.save_for_hub(ssmblocks.create_model("test_mambair_sr"), tmp_path / "export")
    mask = os.umask(0)
    os.umask(mask)
    for name in ("model.safetensors", "config.json", "README.md"):
        assert (folder / name).stat().st_mode & 0o777 == 0o666 & ~mask
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
