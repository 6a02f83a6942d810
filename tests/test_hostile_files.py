"""Files from strangers: checkpoints whose few bytes claim gigabytes, tensors that are not weights, config.json files
that would build the wrong or a huge model — each refused with a CheckpointError that names the problem, before
anything large is built or allocated."""

from __future__ import annotations

import json
import time

import pytest
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import save_file

import ssmblocks
from ssmblocks import CheckpointError, PretrainedUnavailableError


def _saved(tmp_path, state, name="weights.pth"):
    path = tmp_path / name
    torch.save(state, path)
    return path


@pytest.fixture
def state():
    return ssmblocks.create_model("test_mambair_dn").state_dict()


def test_a_zero_stride_tensor_is_refused_before_detection(tmp_path, state):
    key = "conv_first.weight"
    state[key] = torch.zeros(()).expand(4096, 4096, 3, 3)     # 4 bytes on disk, 600 MB when materialised
    path = _saved(tmp_path, state)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(CheckpointError, match=r"conv_first\.weight.*zero stride"):
        ssmblocks.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="zero stride"):
        ssmblocks.create_model("test_mambair_dn", checkpoint_path=path)


@pytest.mark.parametrize("make, problem", [
    (lambda t: t.to_sparse(), "sparse"),
    (lambda t: torch.quantize_per_tensor(t, 0.1, 0, torch.qint8), "quantized"),
    (lambda t: t.to(torch.complex64), "complex"),
])
def test_tensors_that_are_not_dense_real_weights_are_refused(tmp_path, state, make, problem):
    state["conv_first.bias"] = make(state["conv_first.bias"])
    with pytest.raises(CheckpointError, match=problem):
        ssmblocks.load_checkpoint(_saved(tmp_path, state))


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_integer_and_bool_tensors_in_place_of_float_weights_are_refused(tmp_path, state, dtype):
    state["conv_first.bias"] = state["conv_first.bias"].to(dtype)
    with pytest.raises(CheckpointError, match=r"conv_first\.bias is (integer|bool)"):
        ssmblocks.load_checkpoint(_saved(tmp_path, state))


def test_non_string_keys_are_a_checkpoint_error(tmp_path, state):
    state[7] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="not a string"):
        ssmblocks.load_checkpoint(_saved(tmp_path, state))


# ---- hub folders: config.json is checked before anything is built --------------------------------------------------
@pytest.fixture
def folder(tmp_path):
    return ssmblocks.save_for_hub(ssmblocks.create_model("test_mambair_dn"), tmp_path / "hub")


def _edit_config(folder, change):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize("change, problem", [
    (lambda c: c["model_args"].update(depths=[1_000_000]), r"depths=\[1000000\].*the weights say \[2, 2\]"),
    (lambda c: c["model_args"].update(embed_dim=-16), r"embed_dim=-16"),
    (lambda c: c["model_args"].update(embed_dim="16"), r"embed_dim='16'"),
    (lambda c: c.update(architecture=5), r"'architecture' must be the name of a registered model, got 5"),
    (lambda c: c.update(architecture="not_a_model"), r"'not_a_model', which is not registered.*--import"),
    (lambda c: c.update(model_args=[1, 2]), r"'model_args' must be an object"),
    (lambda c: c["pretrained_cfg"].update(file=5), r"field 'file' must be str or null, got 5"),
    (lambda c: c["pretrained_cfg"].update(metrics="high"), r"field 'metrics' must be dict"),
])
def test_a_hostile_config_is_refused_with_one_clear_error(folder, change, problem):
    _edit_config(folder, change)
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=problem):
        ssmblocks.create_model(f"local-dir:{folder}")
    assert time.perf_counter() - started < 30        # refused before building: no million-block model


def test_a_huge_size_of_a_custom_family_stops_at_the_weights_parameter_count(tmp_path, monkeypatch):
    """No detector vouches for a custom family's arguments: the meta build stops once it has far more parameters
    than the file has tensors."""

    def hostile_custom_family(blocks: int = 1):
        return torch.nn.Sequential(*(torch.nn.Linear(2, 2) for _ in range(blocks)))

    for table, value in ((ssmblocks._registry._entrypoints, hostile_custom_family),
                         (ssmblocks._registry._model_modules, "tests")):   # registered for this test only
        monkeypatch.setitem(table, "hostile_custom_family", value)

    folder = tmp_path / "custom"
    folder.mkdir()
    save_file(hostile_custom_family().state_dict(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"architecture": "hostile_custom_family",
                                                    "model_args": {"blocks": 10**9}}))
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="has more parameters: the arguments do not describe these weights"):
        ssmblocks.create_model(f"local-dir:{folder}")
    assert time.perf_counter() - started < 30


# ---- weights first ------------------------------------------------------------------------------------------------
def test_pretrained_weights_are_resolved_before_the_model_is_built(monkeypatch):
    built = []
    monkeypatch.setattr(ssmblocks._builder, "_build", lambda *a, **k: built.append(a) or pytest.fail("built"))
    with pytest.raises(PretrainedUnavailableError):
        ssmblocks.create_model("mambacsr", pretrained=True)        # Drive folder, no gdown/offline here
    assert built == []


def test_without_a_network_the_hub_source_fails_at_once(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE unset but nothing listening: the Hub client would retry for ~25 s; the library says offline."""
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "ENDPOINT", "http://127.0.0.1:9")     # the discard port: refused at once
    started = time.perf_counter()
    with pytest.raises(PretrainedUnavailableError, match="offline"):
        ssmblocks.create_model("mambair_sr_x4", pretrained=True, cache_dir=tmp_path)
    assert time.perf_counter() - started < 10
