"""The configuration reference and .env.example are generated from the settings model."""

from orchestrator.settings import Settings
from orchestrator.tools.config_docs import ENV_EXAMPLE, MARKDOWN, env_example, markdown


def test_the_committed_reference_and_env_example_are_current():
    assert MARKDOWN.read_text() == markdown(), "run `python -m orchestrator.tools.config_docs`"
    assert ENV_EXAMPLE.read_text() == env_example(), (
        "run `python -m orchestrator.tools.config_docs`"
    )


def test_every_setting_is_described_and_the_example_parses(tmp_path, monkeypatch):
    assert all(field.description for field in Settings.model_fields.values())
    for line in env_example().splitlines():
        if line.startswith("#FLEET_") and not line.endswith("="):
            name, value = line[1:].split("=", 1)
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("FLEET_STATE_DIR", str(tmp_path))
    Settings(_env_file=None)  # every default, written as the example writes it, is valid
