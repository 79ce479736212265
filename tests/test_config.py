"""How a training run is compared with the paper's protocol (recorded in the bundle)."""

from bids_stroke.config import PAPER_MAX_EPOCHS, PAPER_PATIENCE, VARIANT_NAMES, Config, training_protocol


def test_the_defaults_are_the_papers_protocol():
    config = Config(bids_dir=".", output_dir="out", analysis_level="group")
    protocol = training_protocol(config.variants, config.max_epochs, config.patience, config.learning_rate,
                                 config.size_branch)
    assert protocol == {"name": "paper", "deviations": []}
    # the order of the variants does not matter
    assert training_protocol(list(reversed(VARIANT_NAMES)), PAPER_MAX_EPOCHS, PAPER_PATIENCE)["name"] == "paper"


def test_every_deviation_is_named():
    protocol = training_protocol(VARIANT_NAMES[:2], 5, PAPER_PATIENCE)
    assert protocol["name"] == "reduced"
    assert protocol["deviations"] == ["2 of 8 variants (f8-g1.5, f8-g1.5-bn)", "at most 5 epochs instead of 150"]
    assert training_protocol(VARIANT_NAMES, PAPER_MAX_EPOCHS, 10)["deviations"] == ["patience 10 instead of 30"]
    assert training_protocol(VARIANT_NAMES, PAPER_MAX_EPOCHS, PAPER_PATIENCE, 1e-3, "mean")["deviations"] == [
        "learning rate 0.001 instead of 0.0001", "size branch 'mean' beside the attended features"]
