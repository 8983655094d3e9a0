"""Configuration: TOML + env + flags, field-path errors, a fuzz over hostile input, and the
committed example config."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_daemon.cli.run import parse_camera_flag
from edge_daemon.config import ConfigError, load_settings
from tests.support.paths import ROOT

toml_scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False), st.text(max_size=20), st.booleans())


def test_toml_env_and_overrides_precedence(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text(
        '[[cameras]]\nname = "door"\nurl = "rtsp://cam/1"\n\n[detector]\nscore_threshold = 0.6\nmin_face_px = 30\n'
        '[embedder]\nmax_batch = 4\n'
    )
    monkeypatch.setenv("EDGE_DETECTOR__MIN_FACE_PX", "50")
    monkeypatch.setenv("EDGE_EMBEDDER__MAX_BATCH", "8")
    settings = load_settings(config, embedder={"max_batch": 2})
    assert settings.cameras[0].name == "door" and not settings.cameras[0].is_file
    assert settings.detector.score_threshold == 0.6  # file
    assert settings.detector.min_face_px == 50  # env beats file
    assert settings.embedder.max_batch == 2  # flags beat env
    assert settings.embedder.max_wait_ms == 30.0  # default


def test_errors_name_the_field_path(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[[cameras]]\nname = "a"\nurl = "x.mp4"\n[[cameras]]\nname = "b"\nurl = "y"\ndetect_fps = "fast"\n[mqtt]\nurl = "http://x"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    message = str(error.value)
    assert "cameras.1.detect_fps" in message and "mqtt.url" in message and "expected mqtt://" in message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[detector]\nbackend = 'yunet_onnx'\n", "needs detector.model_path"),
        ("[embedder]\nbackend = 'vgg16'\n", "needs embedder.model_dir"),
        ("[[cameras]]\nname = 'a'\nurl = 'x'\n[[cameras]]\nname = 'a'\nurl = 'y'\n", "camera names must be unique"),
        ("[[cameras]]\nname = 'a/b'\nurl = 'x'\n", "cameras.0.name"),
        ("[detector]\nbakend = 'yuface'\n", "detector.bakend"),
        ("this is = not [toml", "cannot read configuration"),
    ],
)
def test_invalid_configs(tmp_path, text, fragment):
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_settings(config)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_camera_flag():
    assert parse_camera_flag("door=rtsp://u:p@h/1") == {"name": "door", "url": "rtsp://u:p@h/1"}
    for bad in ("door", "=x", "a/b=x"):
        with pytest.raises(ConfigError):
            parse_camera_flag(bad)


@settings(max_examples=150, deadline=None)
@given(
    section=st.sampled_from(["detector", "embedder", "gallery", "tracker", "events", "mqtt", "logging"]),
    key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=16)
    | st.sampled_from(["backend", "max_batch", "max_wait_ms", "score_threshold", "url", "iou_threshold", "level"]),
    value=toml_scalars,
)
def test_fuzzed_config_values_load_or_fail_with_a_config_error(tmp_path_factory, section, key, value):
    config = tmp_path_factory.mktemp("fuzz") / "c.toml"
    rendered = json.dumps(value) if isinstance(value, (str, bool)) else repr(value)
    config.write_text(f"[{section}]\n{key} = {rendered}\n")
    try:
        load_settings(config)
    except ConfigError as exc:
        assert str(exc).startswith(("invalid configuration", "cannot read configuration"))


def test_committed_example_config_is_current_and_valid():
    from edge_daemon.config import example_toml

    example = ROOT / "deploy" / "edge-daemon.example.toml"
    assert example.read_text() == example_toml(), "regenerate: edge-daemon config example > deploy/edge-daemon.example.toml"
    assert load_settings(example).detector.backend == "yunet"
    # Every option of every section is documented in it.
    from edge_daemon.config import Settings

    for section, field in Settings.model_fields.items():
        model = field.annotation.__args__[0] if section == "cameras" else field.annotation
        for name in model.model_fields:
            assert f"# {name} = " in example.read_text(), (section, name)
