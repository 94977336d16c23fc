import pytest

from mmfuse.config import list_presets, load_config
from mmfuse.errors import ConfigError


@pytest.mark.parametrize("preset", list_presets())
def test_presets_validate(preset):
    cfg = load_config(preset)
    assert set(cfg.encoders) == {"text", "image", "audio", "sequence", "tabular"}


def test_seed_preset_is_the_keras_recipe():
    cfg = load_config("seed")
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.batch_size, cfg.train.max_epochs) == ("adam", 0.001, 32, 10)
    assert not cfg.train.early_stopping and cfg.preprocess["image"]["size"] == 28
    assert cfg.head.hidden_dims == []


def test_config_file_merges_over_preset(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {max_epochs: 3}\nencoders: {text: {name: bow}}\n")
    cfg = load_config("default", path)
    assert cfg.train.max_epochs == 3 and cfg.encoders["text"].name == "bow"
    assert cfg.encoders["image"].name == load_config("default").encoders["image"].name


def test_bad_config_names_the_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {schedule: linear, batch_size: 0}\n")
    with pytest.raises(ConfigError, match=r"train\.batch_size.*train\.schedule: Input should be 'cosine'"):
        load_config("default", path)
    path.write_text("trian: {}\n")
    with pytest.raises(ConfigError, match="trian"):
        load_config("default", path)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="choose from: .*seed"):
        load_config("nope")


def test_default_rule_picks_the_encoder_from_the_column_traits():
    cfg = load_config("default")
    grey, why = cfg.choose_encoder("scan", "image", {"colour": False})
    colour, _ = cfg.choose_encoder("photo", "image", {"colour": True})
    assert (grey.name, colour.name) == ("cnn", "efficientnet_lite0") and why == "rule: image with colour=False"
    resolved = cfg.for_columns({"scan": ("image", {"colour": False}), "photo": ("image", {"colour": True})})
    assert resolved.column_encoders["scan"].name == "cnn" and "photo" not in resolved.column_encoders
    assert resolved.encoder_for("scan", "image").name == "cnn"  # what the saved config rebuilds, traits or not


def test_an_encoder_the_user_names_for_a_kind_beats_the_preset_rules(tmp_path):
    cfg = load_config("default", overrides={"encoders": {"image": {"name": "conv"}}})
    assert cfg.choose_encoder("scan", "image", {"colour": False})[0].name == "conv"
    assert load_config("default", overrides={"encoders": {"text": {"name": "bow"}}}).rules  # other kinds keep theirs


def test_a_rule_must_name_an_encoder_of_its_input_kind():
    with pytest.raises(ConfigError, match=r"rules\.0.*'gru' is for text inputs"):
        load_config("default", {"rules": [{"input": "image", "when": {"colour": False}, "encoder": {"name": "gru"}}]})
