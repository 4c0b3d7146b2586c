"""The multiplicative (log-normal) observation error (``error_scale = "log"``, preset ``lognormal``): densities
against scipy.stats.lognorm and against the defining integral over κ, exact gradients (term and adjoint), the
Jacobian that puts values, pointwise terms and lppd on the observation scale, positive and calibrated
predictive draws, the site-scale posterior, the PyMC Op, the configuration, and the paper preset unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from bayes_vmimics.config import MODEL_DIR, config_from_dict, load_config
from bayes_vmimics.errors import PRESETS, ErrorModel
from bayes_vmimics.gradients import site_log_likelihood, site_log_likelihoods
from bayes_vmimics.likelihood import CalibrationProblem

THETA = np.array([7.7, 14.3, 2.0, 6.1, 12.0, 4.0, 1.56])
LOGNORMAL = ErrorModel.from_preset("lognormal")
#: the log-normal model without floor, weights and κ: a plain log-normal of σ_log = √log(1 + r²)
PLAIN = ErrorModel.from_preset(
    "lognormal", soc_abs_error=0.0, c14_abs_error=0.0, depth_weighting="none", discrepancy="none"
)


@pytest.fixture(scope="module")
def atmosphere(bomb_atmosphere):
    return bomb_atmosphere


@pytest.fixture(scope="module")
def sites(error_model_sites):
    return error_model_sites


def _site_data(rng, n=8):
    obs = np.exp(rng.normal(1.5, 1.0, n))
    pred = obs * np.exp(0.4 * rng.standard_normal(n))
    h = rng.choice([2.0, 5.0, 10.0, 20.0], n)
    return obs, pred, h


def _fd(f, x, rel_step=1e-6):
    g = np.empty(x.size)
    for i in range(x.size):
        h = rel_step * max(abs(x[i]), 1e-3)
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2.0 * h)
    return g


def _assert_close(g, fd, rtol):
    scale = np.maximum(np.abs(fd), 1e-6 * np.max(np.abs(fd)))
    rel = np.abs(g - fd) / scale
    assert np.all(rel <= rtol), f"max relative error {rel.max():.3g} (per component {rel})"


# ------------------------------------------------------------------------------------------------------------
# the preset, σ_log and the paper preset unchanged
# ------------------------------------------------------------------------------------------------------------


def test_preset_is_the_discrepancy_preset_on_the_log_scale():
    assert PRESETS["lognormal"] == {**PRESETS["discrepancy"], "error_scale": "log"}
    disc = ErrorModel.from_preset("discrepancy")
    assert LOGNORMAL == ErrorModel(**{**disc.__dict__, "name": "lognormal", "error_scale": "log"})
    assert LOGNORMAL.log_scale and not disc.log_scale
    # the paper preset is the dataclass default, on the linear scale
    assert ErrorModel.from_preset("paper") == ErrorModel() and ErrorModel().error_scale == "linear"


def test_sigma_log_keeps_the_relative_error_and_lambda():
    """σ_log = √log(1 + (σ/y)²): the log-normal whose coefficient of variation is the linear model's σ/y; the
    10 % base error gives σ_log = 0.09975 for SOC and √log(1 + 0.01/5) = 0.04471 for F14C (λ = 5)."""
    y = np.array([0.5, 1.0, 13.8, 60.0])
    soc = PLAIN.prepare("soc", y, np.full(4, 10.0), 0.1)
    np.testing.assert_allclose(soc.sigma_log, math.sqrt(math.log(1.01)), rtol=1e-14)
    np.testing.assert_allclose(soc.sigma, 0.1 * y, rtol=1e-14)  # the linear σ stays as it was
    c14 = PLAIN.prepare("f14c", np.array([0.3, 1.1]), np.full(2, 10.0), 0.1, 5.0)
    np.testing.assert_allclose(c14.sigma_log, math.sqrt(math.log1p(0.01 / 5.0)), rtol=1e-14)
    # the coefficient of variation of the log-normal equals σ/y
    cv = np.sqrt(np.expm1(soc.sigma_log**2))
    np.testing.assert_allclose(cv, 0.1, rtol=1e-12)
    # with the floor: σ_log² = log(1 + r² + (s₀/y)²); 0.1236 at the median layer, 0.835 at 1 mg C cm⁻³
    floor = LOGNORMAL.prepare("soc", y, np.full(4, 10.0), 0.1)
    np.testing.assert_allclose(floor.sigma_log, np.sqrt(np.log1p(0.01 + (1.0 / y) ** 2)), rtol=1e-14)


def test_log_scale_needs_positive_observations():
    with pytest.raises(ValueError, match="observations > 0"):
        LOGNORMAL.prepare("soc", np.array([1.0, 0.0]), np.full(2, 5.0), 0.1)
    # a prediction ≤ 0 has zero density, not an error
    term = PLAIN.prepare("soc", np.array([1.0, 2.0]), np.full(2, 5.0), 0.1)
    assert term.log_likelihood(np.array([1.0, -1.0])) == -np.inf
    assert term.log_likelihood(np.array([1.0, 0.0])) == -np.inf


# ------------------------------------------------------------------------------------------------------------
# densities against independent references
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["soc", "f14c"])
@pytest.mark.parametrize("floor", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_independent_log_normal_equals_scipy(variable, floor, weighted):
    em = ErrorModel.from_preset(
        "lognormal", discrepancy="none", depth_weighting="thickness" if weighted else "none",
        **({} if floor else {"soc_abs_error": 0.0, "c14_abs_error": 0.0}),
    )  # fmt: skip
    obs, pred, h = _site_data(np.random.default_rng(1))
    if variable == "f14c":
        obs, pred = obs / 10.0, pred / 10.0
    lam = 1.0 if variable == "soc" else 5.0
    term = em.prepare(variable, obs, h, 0.1, lam)
    s0 = (1.0 if variable == "soc" else 0.02) if floor else 0.0
    s_log = np.sqrt(np.log1p(0.01 / lam + (s0 / obs) ** 2))
    ref = stats.lognorm.logpdf(obs, s_log, scale=pred)  # median = the prediction
    w = np.minimum(1.0, h / 10.0) if weighted else np.ones(obs.size)
    assert term.log_likelihood(pred) == pytest.approx(np.sum(w * ref), rel=1e-12)
    pw = term.pointwise_log_likelihood(pred)
    np.testing.assert_allclose(pw, w * ref, rtol=1e-12)
    assert pw.sum() == pytest.approx(term.log_likelihood(pred), rel=1e-13)
    # predictive density carries no weights
    np.testing.assert_allclose(term.log_predictive_density(pred), ref, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_site_scale_term_equals_its_integral_over_kappa(weighted):
    """log p = log ∫ Π LogNormal(y_i; log μ_i, κ²σ_log,i²)^{w_i} InvGamma(κ²; a, b) dκ² by quadrature."""
    em = ErrorModel.from_preset("lognormal", depth_weighting="thickness" if weighted else "none", discrepancy_shape=2.5)
    obs, pred, h = _site_data(np.random.default_rng(4))
    term = em.prepare("soc", obs, h, 0.1)
    w = term.weights if weighted else np.ones(obs.size)
    a, b = em.discrepancy_shape, em.discrepancy_rate

    def integrand(k2):
        ll = np.sum(w * stats.lognorm.logpdf(obs, np.sqrt(k2) * term.sigma_log, scale=pred))
        return math.exp(ll + stats.invgamma.logpdf(k2, a, scale=b))

    val, _ = integrate.quad(integrand, 0.0, np.inf, limit=400, epsabs=0.0, epsrel=1e-12)
    assert term.log_likelihood(pred) == pytest.approx(math.log(val), abs=1e-8)


def test_site_scale_pointwise_and_new_site_predictive_are_log_student_t():
    em = ErrorModel.from_preset("lognormal", depth_weighting="none")
    obs, pred, h = _site_data(np.random.default_rng(5))
    term = em.prepare("soc", obs, h, 0.1)
    a, b = em.discrepancy_shape, em.discrepancy_rate
    pw = term.pointwise_log_likelihood(pred)
    total = term.log_likelihood(pred)
    for i in range(obs.size):
        keep = np.arange(obs.size) != i
        rest = em.prepare("soc", obs[keep], h[keep], 0.1)
        assert pw[i] == pytest.approx(total - rest.log_likelihood(pred[keep]), rel=1e-12, abs=1e-10)
        a2, b2 = rest.discrepancy_posterior(pred[keep])
        # y_i | y₋ᵢ: log y_i Student-t, with the Jacobian −log y_i
        t = stats.t.logpdf(np.log(obs[i]), 2 * a2, loc=np.log(pred[i]), scale=term.sigma_log[i] * math.sqrt(b2 / a2))
        assert pw[i] == pytest.approx(t - np.log(obs[i]), rel=1e-12)
    lpd = term.log_predictive_density(pred)
    ref = stats.t.logpdf(np.log(obs), 2 * a, loc=np.log(pred), scale=term.sigma_log * math.sqrt(b / a)) - np.log(obs)
    np.testing.assert_allclose(lpd, ref, rtol=1e-12)
    # as a density of y it integrates to one
    y_grid = np.exp(np.linspace(np.log(pred[0]) - 40.0, np.log(pred[0]) + 40.0, 400001))
    one = PLAIN.prepare("soc", np.array([obs[0]]), np.array([5.0]), 0.1)
    dens = np.exp(
        stats.t.logpdf(np.log(y_grid), 2 * a, loc=np.log(pred[0]), scale=one.sigma_log[0] * 3.0) - np.log(y_grid)
    )
    assert integrate.trapezoid(dens, y_grid) == pytest.approx(1.0, abs=2e-3)


def test_lppd_is_on_the_observation_scale():
    """With a small relative error the log-normal and the normal density of y nearly agree (the Jacobian −log y
    makes the log-normal values densities of y, comparable with the normal models' lppd)."""
    obs, _, h = _site_data(np.random.default_rng(6))
    pred = obs * (1.0 + 0.01 * np.random.default_rng(7).standard_normal(obs.size))
    normal = ErrorModel().prepare("soc", obs, h, 0.01)
    lognormal = ErrorModel(error_scale="log").prepare("soc", obs, h, 0.01)
    np.testing.assert_allclose(lognormal.log_predictive_density(pred), normal.log_predictive_density(pred), atol=0.02)
    assert lognormal.log_likelihood(pred) == pytest.approx(normal.log_likelihood(pred), abs=0.1)


# ------------------------------------------------------------------------------------------------------------
# gradients
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["soc", "f14c"])
@pytest.mark.parametrize("kappa", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_term_gradient_wrt_predictions(variable, kappa, weighted):
    em = ErrorModel.from_preset(
        "lognormal",
        depth_weighting="thickness" if weighted else "none",
        discrepancy="site_scale" if kappa else "none",
    )
    rng = np.random.default_rng(3)
    obs = np.exp(rng.normal(1.5, 1.0, 9)) if variable == "soc" else rng.uniform(0.05, 1.1, 9)
    pred = obs * np.exp(0.3 * rng.standard_normal(9))
    h = np.array([2.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 40.0])
    term = em.prepare(variable, obs, h, 0.1, 1.0 if variable == "soc" else 5.0)
    v, g = term.log_likelihood_and_gradient(pred)
    assert v == term.log_likelihood(pred)
    _assert_close(g, _fd(term.log_likelihood, pred), 1e-6)
    # the analytic form: −(posterior mean of 1/κ²) w_i (log μ_i − log y_i) / (σ_log,i² μ_i)
    w = term.weights if weighted else np.ones(9)
    e = np.log(pred) - np.log(obs)
    factor = 1.0
    if kappa:
        a, b = term.discrepancy_posterior(pred)
        factor = a / b
    np.testing.assert_allclose(g, -factor * w * e / (term.sigma_log**2 * pred), rtol=1e-12)


def test_log_student_t_gradient():
    em = ErrorModel.from_preset("lognormal", discrepancy="none", distribution="student_t", student_nu=3.0)
    obs, pred, h = _site_data(np.random.default_rng(8))
    term = em.prepare("soc", obs, h, 0.1)
    v, g = term.log_likelihood_and_gradient(pred)
    ref = term.weights * (stats.t.logpdf(np.log(obs), 3.0, np.log(pred), term.sigma_log) - np.log(obs))
    assert v == pytest.approx(ref.sum(), rel=1e-12)
    _assert_close(g, _fd(term.log_likelihood, pred), 1e-6)


def test_site_gradient_matches_finite_differences(sites, atmosphere):
    """The adjoint (gradients.py) needs only ∂ log p/∂μ from the error term: SOC and F14C through the steady
    state and the ¹⁴C tracer."""
    prob = CalibrationProblem(sites[:1], atmosphere=atmosphere, error_model="lognormal")
    assert prob.c14_enabled and prob.n_c14 == 6
    v, g = prob.site_log_likelihood_and_gradient(0, THETA)
    assert np.isfinite(v) and v == prob.site_log_likelihood(0, THETA) == prob.log_likelihood(THETA)
    step = 1e-5
    fd = np.empty(7)
    for i in range(7):
        tp, tm = THETA.copy(), THETA.copy()
        tp[i] += step * THETA[i]
        tm[i] -= step * THETA[i]
        fd[i] = (site_log_likelihood(prob, 0, tp) - site_log_likelihood(prob, 0, tm)) / (2 * step * THETA[i])
    _assert_close(g, fd, 1e-5)


# ------------------------------------------------------------------------------------------------------------
# predictive: positive and calibrated; the scale posterior
# ------------------------------------------------------------------------------------------------------------


def test_predictive_draws_are_positive_where_the_normal_ones_are_not():
    """A low-SOC layer (0.3 mg C cm⁻³, predicted 0.5) below richer ones: the normal (``discrepancy``) model's 5 %
    predictive quantile of that layer is below zero, every log-normal draw is positive."""
    obs = np.array([30.0, 12.0, 0.3, 4.0])
    pred = np.array([20.0, 8.0, 0.5, 6.0])
    h = np.full(4, 10.0)
    rng = np.random.default_rng(9)
    n = 20000
    normal = ErrorModel.from_preset("discrepancy").prepare("soc", obs, h, 0.1)
    lognormal = LOGNORMAL.prepare("soc", obs, h, 0.1)
    q_normal = np.quantile(normal.sample(np.broadcast_to(pred, (n, 4)), rng), 0.05, axis=0)
    draws = lognormal.sample(np.broadcast_to(pred, (n, 4)), rng)
    assert q_normal[2] < 0  # the normal predictive of the low layer reaches below zero
    assert np.all(draws > 0)
    # the median of the predictive is the prediction
    np.testing.assert_allclose(np.median(draws, axis=0) / pred, 1.0, atol=0.05)
    for new_site in (True, False):
        assert np.all(lognormal.sample(pred, rng, new_site=new_site) > 0)
    # NaN predictions stay NaN
    assert np.isnan(lognormal.sample(np.array([np.nan, 1.0, 1.0, 1.0]), rng)[0])


def _coverage(draws, y, level):
    lo, hi = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    return float(np.mean((y >= lo) & (y <= hi)))


@pytest.mark.parametrize("known_kappa", [False, True])
def test_predictive_intervals_are_calibrated_on_draws_from_the_model(known_kappa):
    """600 sites × 5 layers simulated from the log-normal model itself (thickness weights active; without the
    floor, so that σ_log does not depend on the simulated y). κ from the prior (the new-site predictive, a
    log-Student-t) or a known κ = 4 (a prior concentrated there, a = 10⁴: a log-normal of scale 4σ_log): the
    50 % and 90 % intervals of predictive draws cover within Monte Carlo error (3 s.e. of the mean of the sites'
    coverages, which includes the correlation by the shared κ)."""
    rng = np.random.default_rng(10)
    over = {"soc_abs_error": 0.0}
    if known_kappa:
        over |= {"discrepancy_shape": 1e4, "discrepancy_scale": 4.0}
    em = ErrorModel.from_preset("lognormal", **over)
    a, b = em.discrepancy_hyper("soc")
    n_sites, n_layers, n_draws = 600, 5, 400
    cover = {0.5: [], 0.9: []}
    for _ in range(n_sites):
        pred = np.exp(rng.normal(1.5, 1.2, n_layers))
        h = rng.choice([2.0, 5.0, 10.0, 20.0], n_layers)
        kappa = math.sqrt(b / rng.gamma(a))
        y = np.exp(np.log(pred) + kappa * math.sqrt(math.log(1.01)) * rng.standard_normal(n_layers))
        term = em.prepare("soc", y, h, 0.1)
        draws = term.sample(np.broadcast_to(pred, (n_draws, n_layers)), rng)
        assert np.all(draws > 0)
        for level in cover:
            cover[level].append(_coverage(draws, y, level))
    for level, c in cover.items():
        site_means = np.asarray(c)
        se = site_means.std(ddof=1) / math.sqrt(n_sites)
        assert abs(site_means.mean() - level) < 3.0 * se + 0.01, (level, site_means.mean(), se)


def test_discrepancy_posterior_recovers_a_planted_scale():
    """log-residuals κ σ_log,i ε_i with κ = 3 on 40 sites of 60 layers (floor and thickness weights active)."""
    rng = np.random.default_rng(8)
    a0, b0 = LOGNORMAL.discrepancy_hyper("soc")
    medians = []
    for _ in range(40):
        y = np.exp(rng.normal(2.0, 1.0, 60))
        h = rng.choice([2.0, 5.0, 10.0], 60)
        term = LOGNORMAL.prepare("soc", y, h, 0.1)
        pred = y * np.exp(3.0 * term.sigma_log * rng.standard_normal(60))
        a, b = term.discrepancy_posterior(pred)
        assert a == pytest.approx(a0 + 0.5 * term.weights.sum())
        z = (np.log(pred) - np.log(y)) / term.sigma_log
        assert b == pytest.approx(b0 + 0.5 * np.sum(term.weights * z * z), rel=1e-12)
        medians.append(math.sqrt(stats.invgamma(a, scale=b).median()))
    assert np.median(medians) == pytest.approx(3.0, rel=0.1)


# ------------------------------------------------------------------------------------------------------------
# the calibration problem, the PyMC Op and the configuration
# ------------------------------------------------------------------------------------------------------------


def test_problem_hooks(sites, atmosphere):
    prob = CalibrationProblem(sites, atmosphere=atmosphere, error_model="lognormal")
    pred = prob.predict(THETA)
    soc = np.concatenate([q.soc for q in pred])
    f14c = np.concatenate([q.f14c[p.c14_index] for p, q in zip(prob.sites, pred, strict=True)])
    lpd = prob.pointwise_log_predictive_density("soc", np.stack([soc, soc]))
    assert lpd.shape == (2, prob.n_soc) and np.all(np.isfinite(lpd))
    rng = np.random.default_rng(2)
    for var, values in (("soc", soc), ("f14c", f14c)):
        draws = prob.sample_observation_noise(var, np.broadcast_to(values, (500, values.size)), rng)
        assert np.all(draws > 0)
        assert np.all(prob.sample_observation_noise(var, values, rng, new_site=False) > 0)
    post = prob.discrepancy_posterior(THETA)
    assert np.all(np.isfinite(post["soc_shape"])) and np.all(post["soc_rate"] > 0)
    fit = prob.fit_discrepancy_prior(THETA)
    assert fit is not None and set(fit) == {"soc", "f14c"}
    pw = prob.pointwise_log_likelihood(THETA)
    assert np.all(np.isfinite(pw["soc"])) and pw["f14c"].size == prob.n_c14
    assert prob.cost(THETA) > 0 and prob.perfect_fit_log_likelihood() > prob.log_likelihood(THETA)


def test_pymc_op_follows_the_lognormal_model(sites, atmosphere):
    """The analogue of tests/test_pymc.py::test_op_with_other_error_models: the Op's value equals NumPy exactly,
    its gradient passes verify_grad, a short NUTS run of the pooled model works."""
    pytensor = pytest.importorskip("pytensor")
    import pytensor.tensor as pt
    from pytensor.gradient import verify_grad

    from bayes_vmimics.inference.pymc_models import SiteLogLikelihoodOp, build_pooled_model, sample

    prob = CalibrationProblem(sites[:2], atmosphere=atmosphere, error_model="lognormal")
    op = SiteLogLikelihoodOp(prob)
    x = pt.dmatrix("theta")
    f = pytensor.function([x], op(x)[0])
    thetas = THETA * np.array([[1.0], [1.03]])
    np.testing.assert_array_equal(f(thetas), site_log_likelihoods(prob, thetas))
    disc = CalibrationProblem(sites[:2], atmosphere=atmosphere, error_model="discrepancy")
    assert not np.allclose(f(thetas), site_log_likelihoods(disc, thetas))
    verify_grad(lambda t: op(t)[0], [thetas], rng=np.random.default_rng(1))
    dt = sample(build_pooled_model(prob), draws=10, tune=10, chains=1, max_treedepth=3, random_seed=4)
    assert dt["posterior"]["theta"].shape == (1, 10, 7)
    assert np.all(np.isfinite(dt["posterior"]["theta"].values))


def test_configuration(tmp_path):
    assert ErrorModel.from_config(load_config("study_lognormal").likelihood) == LOGNORMAL
    cfg = config_from_dict({"likelihood": {"error_model": "lognormal", "discrepancy_scale": 2.0}})
    assert ErrorModel.from_config(cfg.likelihood) == ErrorModel.from_preset("lognormal", discrepancy_scale=2.0)
    # the study default's explicit distribution = "normal" means normal on the log scale
    text = (MODEL_DIR / "study_default.toml").read_text()
    assert 'distribution = "normal"' in text and 'error_model = "discrepancy"' in text
    path = tmp_path / "study.toml"
    path.write_text(text.replace('error_model = "discrepancy"', 'error_model = "lognormal"'))
    assert ErrorModel.from_config(load_config(path).likelihood).log_scale
    default = load_config("study_default")
    assert ErrorModel.from_config(default.replace(likelihood={"error_model": "lognormal"}).likelihood) == LOGNORMAL
    # switching back keeps the linear scale: it belongs to the preset, not to the study file
    assert not ErrorModel.from_config(default.likelihood).log_scale
    with pytest.raises(ValueError, match=r"likelihood\.distribution"):
        config_from_dict({"likelihood": {"error_model": "lognormal", "distribution": "student_t"}})
    with pytest.raises(ValueError, match="error_scale must be one of"):
        ErrorModel(error_scale="sqrt")
