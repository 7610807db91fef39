"""nox sessions: lint, tests (with llama.cpp), tests_core (no runtime), bench, micro, gate."""

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def lint(session):
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session
def tests(session):
    """Every test, real runtimes and converters included (pip caches the compiled wheel)."""
    session.install("torch==2.13.0")  # a CPU build (a plain 'torch' pulls a CUDA build)
    session.install("-e", ".[llama-cpp,convert,mlx,ort-genai,openvino,qnn,qai-hub,test]")
    session.run("pytest", *session.posargs)


@nox.session
def slow(session):
    """The slow tests (Gemma 3 270M on the QNN HTP simulator, ~15 min on 2 cores)."""
    session.install("torch==2.13.0")
    session.install("-e", ".[llama-cpp,convert,qnn,test]")
    session.run("pytest", "-m", "slow", *session.posargs)


@nox.session
def tests_core(session):
    """The tests that need no runtime; runtime tests skip with their reason."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def bench(session):
    """Benchmarks: harness overhead vs bare llama-cpp-python (default), or `-- prepare`."""
    session.install("torch==2.13.0")  # a CPU build for the conversion recipes
    session.install("-e", ".[llama-cpp,convert,mlx,ort-genai,openvino,test]")
    which = session.posargs[0] if session.posargs else "overhead"
    session.run("python", f"benchmarks/bench_{which}.py", *session.posargs[1:])


@nox.session
def gate(session):
    """`edgebench gate` on a PR: nox -s gate -- --baseline REF --candidate REF [--fail-on ...]."""
    session.install("-e", ".[llama-cpp,test]")
    session.run("edgebench", "gate", *session.posargs)


@nox.session
def micro(session):
    """Micro-benchmarks of edgebench's own code (store read, history, suite expansion, rank)."""
    session.install("-e", ".[test]")
    session.run("pytest", "benchmarks/test_bench_micro.py", "--benchmark-only", *session.posargs)
