"""The Python package as a notebook user meets it: derivations and their
renderings, every kernel kind against finite differences and against the
command line's JSON, SciPy on the kernels, the optimizers of the
catalogue, and the errors.

``HESSFORGE_BIN`` names the command-line binary for the tests that compare
with it (``.ci/run`` sets it to ``target/debug/hessforge``); without it
they are skipped.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import hessforge as hf

ROOT = Path(__file__).resolve().parents[2]
# The command line's optimum of logistic regression on its embedded data.
LOGISTIC_OPTIMUM = 0.2188469870492


def central_gradient(f, theta, h=1e-6):
    g = np.zeros_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        g[j] = (f(theta + e) - f(theta - e)) / (2 * h)
    return g


@pytest.fixture(scope="module")
def logistic():
    return hf.model("logistic_regression"), hf.data("logistic_regression")


def test_derive_renders_every_format_of_the_command_line():
    d = hf.derive("logistic_regression")
    assert d.name == "logistic_regression"
    assert d.params[:2] == ["w_1", "w_2"] and d.params[-1] == "b"
    assert r"\begin{document}" in d.latex()
    assert r"\begin{frame}" in d.beamer()
    assert "$" in d.markdown()
    assert "(p - y)" in d.text()
    doc = d.json()
    assert doc["name"] == "logistic_regression"
    assert {r["rule"] for r in doc["rewrites"]} >= {"log-sigmoid", "log-one-minus-sigmoid"}
    assert set(d.index_form) == {"gradient", "hessian"}
    # The notebook's rendering: the per-index gradient and the matrix form
    # of the Hessian.
    latex = d._repr_latex_()
    assert r"\left(p - y\right) \, x_{j}" in latex
    assert r"\tilde{X}^\top S \tilde{X}" in latex
    bundle = d._repr_mimebundle_()
    assert set(bundle) == {"text/markdown", "text/latex", "text/plain"}


def test_derive_takes_a_path_and_text_and_expands(tmp_path):
    text = (ROOT / "derivations" / "rosenbrock.toml").read_text()
    path = tmp_path / "mine.toml"
    path.write_text(text)
    by_path = hf.derive(str(path))
    by_text = hf.derive(text=text)
    assert by_path.text() == by_text.text() == hf.derive("rosenbrock").text()
    assert by_path.index_form is None
    expanded = hf.derive("logistic_regression", expand=True)
    assert "w_10" in expanded.text() and "w_10" not in hf.derive("logistic_regression").text()


def test_a_bad_derivation_raises_derivation_error_with_its_place_and_hint():
    text = 'name = "bad"\ntitle = "t"\ndescription = "d"\nloss = "w *"\n[parameters]\nw = {}\n'
    with pytest.raises(hf.DerivationError) as e:
        hf.derive(text=text)
    message = str(e.value)
    assert "<text>:4:12" in message
    assert "help: complete the expression" in message
    assert isinstance(e.value, ValueError)
    with pytest.raises(hf.DerivationError, match="did you mean `logistic_regression`"):
        hf.model("logistic_regresion")
    with pytest.raises(ValueError, match="give a model's name or path"):
        hf.derive()


def check_kernels(m, theta, data, rel):
    """Every kernel kind of `m` against finite differences of the one below."""
    loss = lambda t: m.loss(t, *data)
    grad = m.grad(theta, *data)
    np.testing.assert_allclose(grad, central_gradient(loss, theta), rtol=rel, atol=rel)
    hess = m.hessian(theta, *data)
    assert hess.shape == (theta.size, theta.size)
    fd = np.array([central_gradient(lambda t: m.grad(t, *data)[j], theta) for j in range(theta.size)])
    np.testing.assert_allclose(hess, fd, rtol=rel, atol=rel)
    np.testing.assert_array_equal(hess, hess.T)
    v = np.linspace(-1, 1, theta.size)
    np.testing.assert_allclose(m.hess_vec(theta, v, *data), hess @ v, rtol=1e-10, atol=1e-12)


def test_kernels_of_a_built_in_against_finite_differences(logistic):
    m, (X, y) = logistic
    assert m.backend == "compiled"
    assert m.data == [("x", (10,)), ("y", ())]
    theta = np.linspace(-0.3, 0.3, m.n_params)
    check_kernels(m, theta, (X, y), 1e-6)
    # Any layout and dtype: a transposed copy, a Fortran-ordered array.
    assert m.loss(theta, np.asfortranarray(X), y.astype(np.float32)) == pytest.approx(
        m.loss(theta, X, y.astype(np.float32).astype(np.float64)), rel=1e-15
    )


def test_kernels_of_files_run_time_compiled_and_interpreted(tmp_path):
    # A file runs on its IR compiled at run time (the loop IR of a tensor
    # parameter, the straight-line programs of scalars), or on the
    # interpreter when asked; all against differences.
    softmax = tmp_path / "softmax.toml"
    shutil.copy(ROOT / "derivations" / "softmax_regression.toml", softmax)
    m = hf.model(str(softmax))
    assert m.backend == "run-time compiled"
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 4))
    Y = np.eye(3)[rng.integers(0, 3, size=50)]
    check_kernels(m, rng.normal(scale=0.3, size=m.n_params), (X, Y), 1e-6)
    interpreted = hf.model(str(softmax), backend="interpreter")
    assert interpreted.backend == "interpreter"
    theta = rng.normal(size=m.n_params)
    assert interpreted.loss(theta, X, Y) == pytest.approx(m.loss(theta, X, Y), rel=1e-12)
    rosenbrock = hf.model(str(ROOT / "derivations" / "rosenbrock.toml"))
    assert rosenbrock.backend == "run-time compiled" and rosenbrock.data == []
    check_kernels(rosenbrock, np.array([-1.2, 1.0]), (), 1e-5)
    oracle = hf.model(str(ROOT / "derivations" / "rosenbrock.toml"), backend="interpreter")
    assert oracle.backend == "interpreter"
    # The straight-line programs compiled give the interpreter's bits.
    assert oracle.loss(np.array([-1.2, 1.0])) == rosenbrock.loss(np.array([-1.2, 1.0]))


def test_gauss_newton_vec_is_jt_j_for_a_square_loss():
    m = hf.model("linear_regression")
    data = hf.data("linear_regression")
    theta = np.linspace(-1, 1, m.n_params)
    v = np.linspace(1, 2, m.n_params)
    # A least-squares loss: its Hessian is the Gauss–Newton matrix.
    np.testing.assert_allclose(
        m.gauss_newton_vec(theta, v, *data), m.hess_vec(theta, v, *data), rtol=1e-10
    )
    logistic = hf.model("logistic_regression")
    with pytest.raises(ValueError, match="c·r² per row"):
        logistic.gauss_newton_vec(logistic.start, logistic.start, *hf.data("logistic_regression"))


def test_shapes_are_checked_with_the_expected_shape_and_names(logistic):
    m, (X, y) = logistic
    theta = m.start
    with pytest.raises(ValueError, match=r"`x` has shape \(569, 3\); expected \(N, 10\)"):
        m.loss(theta, X[:, :3], y)
    with pytest.raises(ValueError, match=r"`y` has shape \(10,\); expected \(569,\)"):
        m.loss(theta, X, y[:10])
    with pytest.raises(ValueError, match=r"1 data arrays given; model `logistic_regression` takes 2: x \(N, 10\), y \(N,\)"):
        m.loss(theta, X)
    with pytest.raises(ValueError, match="theta has 3 entries; model `logistic_regression` has 11 parameters"):
        m.loss(theta[:3], X, y)
    with pytest.raises(ValueError, match="expected an array of numbers"):
        m.loss(theta, "not numbers", y)


def test_scipy_minimize_runs_on_the_kernels(logistic):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    m, (X, y) = logistic
    exact = scipy_optimize.minimize(
        m.loss, m.start, args=(X, y), jac=m.grad, hess=m.hessian, method="trust-exact", tol=1e-12
    )
    assert exact.fun == pytest.approx(LOGISTIC_OPTIMUM, abs=1e-11)
    free = scipy_optimize.minimize(
        m.loss, m.start, args=(X, y), jac=m.grad, hessp=m.hess_vec, method="trust-ncg", tol=1e-12
    )
    assert free.fun == pytest.approx(LOGISTIC_OPTIMUM, abs=1e-11)


NEWTON_FAMILY = ["newton", "newton-damped", "newton-lm", "newton-tr", "newton-exact-tr", "newton-cg", "newton-saddle-free"]


def test_every_optimizer_of_the_catalogue_runs_and_the_newton_family_reaches_the_optimum(logistic):
    m, (X, y) = logistic
    names = hf.optimizers()
    assert set(NEWTON_FAMILY) <= set(names) and "lbfgs" in names
    for name in names:
        if name == "gauss-newton":
            # A loss that is not a square per row: refused, saying why.
            r = hf.minimize(m, X, y, method=name)
            assert r.status == "failed" and r.nit == 0, r
            continue
        r = hf.minimize(m, X, y, method=name, max_iter=2000)
        assert r.status in {"converged", "max_iterations"}, (name, r)
        assert len(r.history["loss"]) == r.nit + 1, name
        assert np.all(np.diff(r.history["loss"][:1]) <= 0), name
        if name in NEWTON_FAMILY:
            assert r.success and abs(r.fun - LOGISTIC_OPTIMUM) < 1e-10, (name, r)


def test_hyper_parameters_are_checked_like_the_command_line(logistic):
    m, (X, y) = logistic
    # The memory reaches the optimizer: another path than the default's.
    short = hf.minimize(m, X, y, method="lbfgs", memory=3, max_iter=300)
    default = hf.minimize(m, X, y, method="lbfgs", max_iter=300)
    assert not np.array_equal(short.history["loss"], default.history["loss"])
    with pytest.raises(ValueError, match="out of range: expected ≥ 1"):
        hf.minimize(m, X, y, method="lbfgs", memory=0)
    with pytest.raises(ValueError, match="no hyper-parameter named `memroy`"):
        hf.minimize(m, X, y, method="lbfgs", memroy=3)
    with pytest.raises(ValueError, match="unknown optimizer|no optimizer"):
        hf.minimize(m, X, y, method="newtn")
    with pytest.raises(ValueError, match="`sideways` is not one of auto, dense, free"):
        hf.minimize(m, X, y, method="newton-tr", hessian="sideways")


def test_minimize_matches_the_command_line(logistic):
    binary = os.environ.get("HESSFORGE_BIN")
    if not binary:
        pytest.skip("HESSFORGE_BIN is not set")
    m, (X, y) = logistic
    out = subprocess.run(
        [binary, "run", "logistic_regression", "--optimizer", "newton", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cli = json.loads(out)
    r = hf.minimize(m, X, y, method="newton")
    assert r.nit == cli["iterations"]
    assert abs(r.fun - cli["final_loss"]) <= 1e-12
    np.testing.assert_allclose(r.x, cli["theta"], rtol=1e-9, atol=1e-12)
    # The kernels at the command line's optimum give its loss and ‖∇L‖∞.
    theta = np.array(cli["theta"])
    assert m.loss(theta, X, y) == pytest.approx(cli["final_loss"], rel=1e-15)
    assert np.max(np.abs(m.grad(theta, X, y))) == pytest.approx(cli["grad_norm"], rel=1e-9)


def test_a_panic_inside_becomes_an_exception_and_the_interpreter_goes_on(logistic):
    with pytest.raises(BaseException) as e:
        hf._hessforge._panic_for_test()
    assert type(e.value).__name__ == "PanicException"
    m, (X, y) = logistic
    assert np.isfinite(m.loss(m.start, X, y))


def test_the_callback_sees_every_iteration_and_can_stop_the_run(logistic):
    m, (X, y) = logistic
    seen = []
    r = hf.minimize(m, X, y, method="newton", callback=lambda s: seen.append(s["iteration"]))
    assert seen == list(range(r.nit + 1))
    assert np.isfinite(r.history["lambda_min"][1:]).all()
    stop = hf.minimize(m, X, y, method="gd", callback=lambda s: s["iteration"] >= 5)
    assert stop.status == "interrupted" and stop.nit == 5 and not stop.success
    assert stop.message == "the callback returned True"

    def broken(state):
        if state["iteration"] == 2:
            raise RuntimeError("the callback's own error")

    with pytest.raises(RuntimeError, match="the callback's own error"):
        hf.minimize(m, X, y, method="gd", callback=broken)


def test_ctrl_c_stops_a_long_fit_and_returns_what_it_reached(logistic):
    import signal
    import threading

    m, (X, y) = logistic
    # Gradient descent with tol 0 and a million iterations: minutes of work.
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        r = hf.minimize(m, X, y, method="gd", tol=0.0, max_iter=1_000_000)
    finally:
        timer.cancel()
    assert r.status == "interrupted", r
    assert "KeyboardInterrupt" in r.message
    assert 0 < r.nit < 1_000_000
    assert r.fun < r.history["loss"][0]


def test_compare_runs_every_full_batch_optimizer_from_one_start(logistic, monkeypatch):
    m, (X, y) = logistic
    pandas = pytest.importorskip("pandas")
    table = hf.compare(m, X, y)
    assert isinstance(table, pandas.DataFrame)
    # Every full-batch optimizer, in the catalogue's order (Gauss–Newton
    # only for a loss that is a square per row), as `hessforge compare`.
    full_batch = [n for n in hf.optimizers() if n not in {"sgd", "minibatch", "gauss-newton"}]
    assert list(table.index) == full_batch
    results = table.attrs["results"]
    assert table.loc["newton", "nit"] == results["newton"].nit
    for name in NEWTON_FAMILY:
        assert results[name].success and abs(results[name].fun - LOGISTIC_OPTIMUM) < 1e-10, name
    # Without pandas: a Comparison list that shows as a table.
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    plain = hf.compare(m, X, y, methods=["newton", "bfgs"])
    assert isinstance(plain, hf.Comparison) and [r.method for r in plain] == ["newton", "bfgs"]
    assert plain._repr_markdown_().splitlines()[0].startswith("| method | status")


def test_figures_are_svg_objects_that_show_as_pictures():
    import xml.etree.ElementTree as ET

    m = hf.model("rosenbrock")
    drawn = hf.figures(m, methods=["newton", "gd"], max_iter=200)
    files = [f.file for f in drawn]
    assert "loss.svg" in files and "contour.svg" in files
    for f in drawn:
        assert f._repr_svg_() is f.svg
        assert ET.fromstring(f.svg).tag.endswith("svg")
    assert all(isinstance(n, str) for n in drawn.notes)


def test_the_example_notebook_runs_and_shows_the_derivation():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    first = next(c for c in nb.cells if c.cell_type == "code")
    latex = first.outputs[-1]["data"]["text/latex"]
    assert r"\left(p - y\right) \, x_{j}" in latex
    assert r"\tilde{X}^\top S \tilde{X}" in latex
    figure = nb.cells[-1].outputs[-1]["data"]
    assert figure["image/svg+xml"].lstrip().startswith("<svg")


def test_a_pass_releases_the_gil():
    import threading
    import time

    def turns_while(target, *args):
        """How often this thread's loop turns while `target` runs in another."""
        worker = threading.Thread(target=target, args=args)
        counted = 0
        worker.start()
        while worker.is_alive():
            counted += 1
        worker.join()
        return counted

    # digits' Hessian (650 × 650) over its 1 797 rows takes a while. Beside a
    # thread that sleeps as long (the GIL free), this loop turns N times;
    # beside the pass it must turn about as often. A native call that held
    # the GIL would stop it for the whole pass (Python switches threads
    # only between bytecodes): a few percent of N.
    m = hf.model("digits")
    data = hf.data("digits")
    theta = np.full(m.n_params, 0.01)
    start = time.perf_counter()
    m.hessian(theta, *data)
    alone = time.perf_counter() - start
    assert alone > 0.02, f"the pass took only {alone:.3f} s: too short to tell"
    free = turns_while(time.sleep, alone)
    during = turns_while(m.hessian, theta, *data)
    assert during > 0.3 * free, f"{during} turns during the pass, {free} beside a sleep"
