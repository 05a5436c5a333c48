import hashlib
import shutil

import numpy as np
import pytest
import torch

from enhancement.config import SHIPPED_MODEL_DIR
from enhancement.errors import CheckpointMismatch, ModelError, ModelUnavailable
from enhancement.model import MetricGanEnhancer, checkpoint_identity


@pytest.fixture
def model_copy(tmp_path):
    target = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL_DIR, target)
    return target


def test_shipped_checkpoint_loads_through_speechbrain(loaded_enhancer):
    from speechbrain.inference.enhancement import SpectralMaskEnhancement
    from speechbrain.lobes.models.MetricGAN import EnhancementGenerator

    assert isinstance(loaded_enhancer._model, SpectralMaskEnhancement)
    assert isinstance(loaded_enhancer._model.mods.enhance_model, EnhancementGenerator)
    assert loaded_enhancer.parameter_count == 1_895_514
    stored = torch.load(SHIPPED_MODEL_DIR / "enhance_model.ckpt", weights_only=True)
    live = loaded_enhancer._model.mods.enhance_model.state_dict()
    assert all(torch.equal(stored[k], live[k].cpu()) for k in stored), "weights must come from the checkpoint"


def test_checkpoint_is_small_enough_to_ship():
    assert (SHIPPED_MODEL_DIR / "enhance_model.ckpt").stat().st_size < 8 * 1024 * 1024


def test_the_checkpoint_identity_tells_shipped_weights_from_others_by_name_and_hash(model_copy, tmp_path):
    digest = hashlib.sha256((SHIPPED_MODEL_DIR / "enhance_model.ckpt").read_bytes()).hexdigest()[:12]
    shipped = checkpoint_identity(SHIPPED_MODEL_DIR)
    assert (shipped.name, shipped.sha256) == ("shipped", digest)
    copied = checkpoint_identity(model_copy)
    assert (copied.name, copied.sha256) == ("model", digest), "same weights elsewhere: same hash, not called shipped"
    (model_copy / "enhance_model.ckpt").write_bytes(b"other weights")
    assert checkpoint_identity(model_copy).sha256 == hashlib.sha256(b"other weights").hexdigest()[:12]
    assert checkpoint_identity(tmp_path / "nowhere").sha256 == "missing"


def test_wrong_keys_are_refused(model_copy):
    state = torch.load(model_copy / "enhance_model.ckpt", weights_only=True)
    state = {k.replace("linear1", "dense1"): v for k, v in state.items()}
    torch.save(state, model_copy / "enhance_model.ckpt")
    with pytest.raises(CheckpointMismatch, match="missing .*linear1.*unexpected .*dense1"):
        MetricGanEnhancer(model_copy, "cpu").load()


def test_extra_keys_are_refused(model_copy):
    state = torch.load(model_copy / "enhance_model.ckpt", weights_only=True)
    state["stray.weight"] = torch.zeros(3)
    torch.save(state, model_copy / "enhance_model.ckpt")
    with pytest.raises(CheckpointMismatch, match="unexpected 1 keys: stray.weight"):
        MetricGanEnhancer(model_copy, "cpu").load()


def test_wrong_shapes_are_refused(model_copy):
    hyperparams = model_copy / "hyperparams.yaml"
    hyperparams.write_text(
        hyperparams.read_text().replace(
            "enhance_model: !new:speechbrain.lobes.models.MetricGAN.EnhancementGenerator",
            "enhance_model: !new:speechbrain.lobes.models.MetricGAN.EnhancementGenerator\n    hidden_size: 100",
        )
    )
    with pytest.raises(CheckpointMismatch, match="size mismatch"):
        MetricGanEnhancer(model_copy, "cpu").load()


def test_not_a_checkpoint_is_refused(model_copy):
    (model_copy / "enhance_model.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable):
        MetricGanEnhancer(model_copy, "cpu").load()


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ModelUnavailable, match="hyperparams.yaml, enhance_model.ckpt"):
        MetricGanEnhancer(tmp_path, "cpu").load()


def test_enhance_before_load_is_a_clear_error():
    with pytest.raises(ModelUnavailable, match="not loaded"):
        MetricGanEnhancer(SHIPPED_MODEL_DIR, "cpu").enhance(np.zeros(16000, dtype=np.float32))


def test_cuda_requested_without_a_gpu_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ModelUnavailable, match="cuda"):
        MetricGanEnhancer(SHIPPED_MODEL_DIR, "cuda").load()


def test_torch_failures_inside_the_model_map_to_model_error(model_copy, speech):
    enhancer = MetricGanEnhancer(model_copy, "cpu")
    enhancer.load()
    broken_layer = enhancer._model.mods.enhance_model.linear1
    broken_layer.weight = torch.nn.Parameter(torch.zeros(7, 3))  # torch raises a shape error in forward
    with pytest.raises(ModelError, match="model inference failed"):
        enhancer.enhance(speech)


def test_output_has_the_input_length(loaded_enhancer, speech):
    out = loaded_enhancer.enhance(speech[:16037])
    assert out.shape == (16037,) and out.dtype == np.float32
