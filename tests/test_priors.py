"""Priors and the strict study configuration."""

import math

import numpy as np
import pytest

from bayes_vmimics.config import StudyConfig, config_from_dict, load_config
from bayes_vmimics.parameters import DEFAULTS, LOWER, PARAMETER_NAMES, UPPER
from bayes_vmimics.priors import SCALE_FACTORS, BoxPrior


def test_uniform_log_prior_is_normalised_box_density():
    prior = BoxPrior()
    assert prior.log_prior(DEFAULTS) == pytest.approx(-np.sum(np.log(UPPER - LOWER)))
    assert prior.log_prior(LOWER) == prior.log_prior(UPPER)  # inclusive edges


@pytest.mark.parametrize("i", range(7))
def test_outside_box_is_minus_inf(i):
    prior = BoxPrior()
    for bad in (LOWER[i] * 0.999, UPPER[i] * 1.001, np.nan):
        t = DEFAULTS.copy()
        t[i] = bad
        assert prior.log_prior(t) == -np.inf


def test_log_uniform_density():
    prior = BoxPrior(log_uniform=SCALE_FACTORS)
    t = DEFAULTS
    expected = 0.0
    for n, lo, hi, v in zip(PARAMETER_NAMES, LOWER, UPPER, t, strict=True):
        expected += -math.log(v) - math.log(math.log(hi / lo)) if n in SCALE_FACTORS else -math.log(hi - lo)
    assert prior.log_prior(t) == pytest.approx(expected)
    # 1-D normalisation of the log-uniform density on [lo, hi]
    lo, hi = LOWER[0], UPPER[0]
    x = np.geomspace(lo, hi, 20001)
    assert np.trapezoid(1 / (x * math.log(hi / lo)), x) == pytest.approx(1.0, rel=1e-6)


def test_sample_inside_box_and_log_uniform_median():
    prior = BoxPrior(log_uniform=["x_v"], bounds={"beta": (1.0, 1.5)})
    x = prior.sample(np.random.default_rng(1), 20000)
    assert np.all(x >= prior.lower) and np.all(x <= prior.upper)
    assert np.median(x[:, 0]) == pytest.approx(math.sqrt(2 * 30), rel=0.05)
    assert x[:, 6].max() <= 1.5
    assert np.all(np.isfinite([prior.log_prior(r) for r in x[:50]]))


def test_bad_prior_arguments():
    with pytest.raises(ValueError, match="unknown parameter"):
        BoxPrior(log_uniform=["xv"])
    with pytest.raises(ValueError, match="lower < upper"):
        BoxPrior(bounds={"beta": (2.0, 1.0)})


def test_default_config_file_matches_code_defaults():
    assert load_config("study_default") == StudyConfig()
    quick = load_config("study_quick")
    assert quick.sampler.n_steps < StudyConfig().sampler.n_steps


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"samplr": {}}, "unknown section"),
        ({"sampler": {"n_walker": 10}}, r"unknown key\(s\) \['sampler.n_walker'\]"),
        ({"sampler": {"n_walkers": "32"}}, "sampler.n_walkers: expected an integer"),
        ({"sampler": {"n_walkers": 7}}, "n_walkers must be even"),
        ({"likelihood": {"soc_unit": "kg"}}, "likelihood.soc_unit must be one of"),
        ({"likelihood": {"c14_weight": 0}}, "c14_weight must be positive"),
        ({"priors": {"log_uniform": ["x_q"]}}, "unknown parameter"),
        ({"priors": {"bounds": {"beta": [1.0]}}}, "expected 2 values"),
        ({"likelihood": {"use_c14": 1}}, "expected true/false"),
        ({"sampler": {"start": "mle"}}, "sampler.start must be one of"),
        ({"data": {"split": "both"}}, "data.split must be one of"),
        ({"likelihood": {"error_model": "robust"}}, "likelihood.error_model must be one of"),
        ({"likelihood": {"c14_abs_error": -0.1}}, "likelihood.c14_abs_error must be"),
        ({"sampler": {"n_ensembles": 1}}, r"sampler.n_ensembles = 1: R-hat compares independent ensembles"),
        (
            {"priors": {"bounds": {"x_v": [1.0, 30.0]}}},
            r"priors.bounds.x_v = \[1, 30\] is not inside the Table 1 box \[2, 30\]",
        ),
        ({"priors": {"bounds": {"beta": [1.2, 2.5]}}}, r"priors.bounds.beta = \[1.2, 2.5\] is not inside .* \[1, 2\]"),
    ],
)
def test_config_is_strict(values, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(values)


def test_config_replace_and_file_errors(tmp_path):
    cfg = StudyConfig().replace(sampler={"n_steps": 10, "discard": 5}, priors={"log_uniform": ["x_v"]})
    assert cfg.sampler.n_steps == 10 and cfg.priors.log_uniform == ("x_v",)
    bad = tmp_path / "bad.toml"
    bad.write_text("[likelihood]\nlambda = 5\n")
    with pytest.raises(ValueError, match="bad.toml: unknown key"):
        load_config(bad)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml")
